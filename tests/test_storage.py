"""Storage failures: destinations are checked before any work, a full disk or a refused
write is one line with exit status 1, and outputs appear whole or not at all.

The process may run as root, which ignores file permissions, so "read-only" is `/sys`
(no one may create files there) or a patched file system call.
"""

import errno
import os

import pytest
import tensorflow as tf

from conftest import run_main
from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError, StorageError, storage_reason
from test_cli import TINY

READ_ONLY = "/sys/tf_stackelberg_test"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A trained run, by the command line's `main` in this process (the cases below
  refuse or fail before anything of it is written)."""
  model_dir = tmp_path_factory.mktemp("storage") / "run"
  assert run_main(f"--model_dir={model_dir}", *TINY, "--model.num_generators=3") == 0
  return model_dir


def _listing(path):
  return sorted(os.path.relpath(os.path.join(d, f), path)
                for d, _, names in os.walk(path) for f in names)


# ------------------------------------------------------------------ the helpers
def test_check_writable_directory_creates_nothing(tmp_path):
  target = tmp_path / "a" / "b"
  files.check_writable_directory(str(target), "--model_dir")
  assert not (tmp_path / "a").exists()
  assert os.listdir(tmp_path) == []  # the probe file is gone


def test_check_writable_directory_refusals(tmp_path):
  a_file = tmp_path / "file"
  a_file.write_text("kept")
  with pytest.raises(ConfigError, match=r"--model_dir=.*/file is a file"):
    files.check_writable_directory(str(a_file), "--model_dir")
  with pytest.raises(ConfigError, match=r"has a file as a parent \(.*/file\)"):
    files.check_writable_directory(str(a_file / "run"), "--model_dir")
  with pytest.raises(ConfigError, match="must name a directory"):
    files.check_writable_directory("", "--model_dir")
  with pytest.raises(StorageError, match=f"--export_dir={READ_ONLY} is not writable"):
    files.check_writable_directory(READ_ONLY, "--export_dir")
  assert a_file.read_text() == "kept"


def test_storage_reason_tells_storage_failures_from_bugs():
  assert storage_reason(OSError(errno.ENOSPC, "No space left on device")) == (
      "No space left on device")
  assert storage_reason(tf.errors.PermissionDeniedError(None, None, "x")) == (
      "Permission denied")
  assert storage_reason(tf.errors.UnknownError(None, None,
                                               "y; Read-only file system")) == (
                                                   "Read-only file system")
  assert storage_reason(ValueError("bug")) is None
  assert storage_reason(tf.errors.InvalidArgumentError(None, None, "shape")) is None


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
  path = tmp_path / "m.json"
  files.write_json(str(path), {"a": 1})

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(tf.io.gfile, "rename", full)
  with pytest.raises(StorageError, match=r"cannot write .*m.json: No space left"):
    files.write_json(str(path), {"a": 2})
  assert path.read_text().strip() == '{\n  "a": 1\n}'
  assert os.listdir(tmp_path) == ["m.json"]  # no temporary file left


def test_staged_directory_appears_whole_or_not_at_all(tmp_path):
  target = tmp_path / "out"
  with pytest.raises(RuntimeError, match="boom"):
    with files.staged_directory(str(target), "--sampling.output_dir") as staging:
      (open(os.path.join(staging, "a.txt"), "w")).write("half")
      raise RuntimeError("boom")
  assert os.listdir(tmp_path) == []
  with files.staged_directory(str(target), "--sampling.output_dir") as staging:
    (open(os.path.join(staging, "a.txt"), "w")).write("whole")
  assert (target / "a.txt").read_text() == "whole"
  with pytest.raises(ConfigError, match="is a directory that holds files"):
    with files.staged_directory(str(target), "--sampling.output_dir"):
      pass
  assert (target / "a.txt").read_text() == "whole"


def test_an_existing_file_as_output_directory_is_refused_without_advice_to_remove(
    tmp_path):
  settings = tmp_path / "flags.json"
  settings.write_text("{}")
  (tmp_path / "flags_2").mkdir()  # taken: the suggestion skips it
  with pytest.raises(ConfigError) as error:
    with files.staged_directory(str(settings), "--sampling.output_dir"):
      pass
  assert str(error.value) == (
      f"--sampling.output_dir={settings} is a file; outputs go into a new directory "
      "and never replace anything: choose one that does not exist, e.g. "
      f"--sampling.output_dir={tmp_path}/flags_3")
  assert "remove" not in str(error.value)
  assert settings.read_text() == "{}"


# ------------------------------------------------------------------ the command line
def test_train_into_a_file_or_below_one_is_refused(tmp_path, capsys):
  a_file = tmp_path / "file"
  a_file.write_text("kept")
  assert run_main(f"--model_dir={a_file}", *TINY) == 2
  assert "error: --model_dir=" in capsys.readouterr().err
  assert run_main(f"--model_dir={a_file}/run", *TINY) == 2
  assert "has a file as a parent" in capsys.readouterr().err
  assert a_file.read_text() == "kept"


def test_train_into_a_read_only_place_exits_1_before_any_work(capsys):
  assert run_main(f"--model_dir={READ_ONLY}/run", *TINY) == 1
  err = capsys.readouterr()
  assert f"error: --model_dir={READ_ONLY}/run is not writable" in err.err
  assert "Training on" not in err.out


def test_sample_and_export_destinations_are_checked_first(trained, tmp_path, capsys):
  before = _listing(trained)
  assert run_main(f"--model_dir={trained}", "--mode=sample",
                  f"--sampling.output_dir={READ_ONLY}/samples") == 1
  err = capsys.readouterr()
  assert f"--sampling.output_dir={READ_ONLY}/samples is not writable" in err.err
  assert "Sampler" not in err.out  # refused before the chains ran
  a_file = tmp_path / "file"
  a_file.write_text("kept")
  assert run_main(f"--model_dir={trained}", "--mode=export",
                  f"--export_dir={a_file}/model") == 2
  err = capsys.readouterr().err
  assert f"--export_dir={a_file}/model has a file as a parent" in err
  assert _listing(trained) == before


def test_eval_on_a_read_only_run_exits_1_before_evaluating(trained, capsys,
                                                           monkeypatch):
  before = _listing(trained)
  real_gfile = tf.io.gfile.GFile

  def read_only(path, mode="r"):
    if "w" in mode and str(path).startswith(str(trained)):
      raise tf.errors.PermissionDeniedError(None, None, f"{path}; Read-only file system")
    return real_gfile(path, mode)

  monkeypatch.setattr(tf.io.gfile, "GFile", read_only)
  assert run_main(f"--model_dir={trained}", "--mode=eval") == 1
  out = capsys.readouterr()
  assert f"error: --model_dir={trained} is not writable" in out.err
  assert "Read-only file system" in out.err
  assert "Checkpoint at step" not in out.out
  assert _listing(trained) == before


def test_sample_on_a_full_disk_leaves_nothing_and_the_retry_works(trained, tmp_path,
                                                                  capsys, monkeypatch):
  out_dir = tmp_path / "samples"
  args = (f"--model_dir={trained}", "--mode=sample", f"--sampling.output_dir={out_dir}",
          "--sampling.num_samples=200", "--sampling.steps=20",
          "--sampling.sampler=none", "--sampling.health_report=false")
  real_write_json = files.write_json

  def disk_full_on_metrics(path, value):
    if path.endswith("metrics.json"):
      raise StorageError(f"cannot write {path}: No space left on device")
    return real_write_json(path, value)

  monkeypatch.setattr(files, "write_json", disk_full_on_metrics)
  assert run_main(*args) == 1
  assert "No space left on device" in capsys.readouterr().err
  assert os.listdir(tmp_path) == []  # neither the output nor its staging directory
  monkeypatch.setattr(files, "write_json", real_write_json)
  assert run_main(*args) == 0
  assert {"samples.npz", "metrics.json"} <= set(os.listdir(out_dir))
