"""The lock of a run directory: one training at a time, stale locks taken over.

In-process cases write lock files by hand; the command line case starts a training in
a process of its own, refuses a second one into the same `--model_dir`, then SIGKILLs
the first and resumes it, exactly.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import tensorflow as tf

import shared_ring_run as shared
from conftest import REPO, assert_same_checkpoints, run_main, tiny_config
from tf_stackelberg.common import run_lock
from tf_stackelberg.common.run_lock import RunLock, RunLockedError
from tf_stackelberg.training import checkpoints, trainer

HOST = socket.gethostname()


def _write_lock(directory, **fields):
  os.makedirs(directory, exist_ok=True)
  holder = {"pid": os.getpid(), "host": HOST,
            "start_ticks": run_lock.process_start_ticks(os.getpid()),
            "started": "2030-01-01T00:00:00",
            "command": "python -m tf_stackelberg.main",
            "token": "theirs", **fields}
  with open(os.path.join(directory, ".lock"), "w") as f:
    json.dump(holder, f)
  return holder


def _read_lock(directory):
  with open(os.path.join(directory, ".lock")) as f:
    return json.load(f)


def _dead_pid():
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


@pytest.fixture
def sleeper():
  """A live process of this host, not this one."""
  process = subprocess.Popen(["sleep", "60"])
  yield process
  process.kill()
  process.wait()


# ------------------------------------------------------------------ holding
def test_the_lock_names_this_process_and_is_removed_on_exit(tmp_path):
  directory = str(tmp_path / "run")
  with RunLock(directory):
    holder = _read_lock(directory)
    assert holder["pid"] == os.getpid() and holder["host"] == HOST
    assert holder["start_ticks"] == run_lock.process_start_ticks(os.getpid())
    assert holder["command"] and holder["started"]
  assert not os.path.exists(directory)  # it made the directory, and it was left empty


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_the_lock_is_removed_when_the_body_raises(tmp_path, error):
  directory = str(tmp_path)
  with pytest.raises(error):
    with RunLock(directory):
      raise error()
  assert not os.path.exists(os.path.join(directory, ".lock"))


def test_a_held_lock_is_refused_naming_its_holder(tmp_path, sleeper):
  directory = str(tmp_path / "run")
  holder = _write_lock(directory, pid=sleeper.pid,
                       start_ticks=run_lock.process_start_ticks(sleeper.pid))
  with pytest.raises(RunLockedError) as error:
    with RunLock(directory):
      pass
  assert str(error.value) == (
      f"--model_dir={directory} is in use by process {sleeper.pid} on {HOST} (started "
      f"2030-01-01T00:00:00); wait for it or stop it (its lock: {directory}/.lock)")
  assert _read_lock(directory) == holder  # left alone


def test_this_process_cannot_take_its_own_lock_twice(tmp_path):
  directory = str(tmp_path)
  with RunLock(directory):
    with pytest.raises(RunLockedError, match=f"in use by process {os.getpid()} "):
      with RunLock(directory, flag="--sampling.output_dir"):
        pass
    assert _read_lock(directory)["pid"] == os.getpid()  # still held
  assert not os.path.exists(os.path.join(directory, ".lock"))


def test_a_lock_on_another_host_counts_as_held(tmp_path):
  directory = str(tmp_path)
  _write_lock(directory, host="elsewhere", pid=_dead_pid())
  with pytest.raises(RunLockedError, match="on elsewhere"):
    RunLock(directory).acquire()


def test_a_lock_being_written_is_waited_for(tmp_path, sleeper):
  directory = str(tmp_path)
  open(os.path.join(directory, ".lock"), "w").close()  # created, not yet written
  timer = threading.Timer(0.3, _write_lock, [directory],
                          {"pid": sleeper.pid, "start_ticks": None})
  timer.start()
  with pytest.raises(RunLockedError, match=f"in use by process {sleeper.pid} "):
    RunLock(directory).acquire()
  timer.join()


def test_an_unreadable_lock_is_refused(tmp_path, monkeypatch):
  monkeypatch.setattr(run_lock, "_READ_WAIT_SECONDS", 0.2)
  directory = str(tmp_path)
  with open(os.path.join(directory, ".lock"), "w") as f:
    f.write("{")
  with pytest.raises(RunLockedError, match="unreadable .*delete that file"):
    RunLock(directory).acquire()


def test_only_the_own_lock_is_removed(tmp_path):
  directory = str(tmp_path)
  with RunLock(directory):
    _write_lock(directory, token="another")  # e.g. taken over by mistake
  assert _read_lock(directory)["token"] == "another"


def test_directories_it_created_are_removed_when_left_empty(tmp_path):
  with RunLock(str(tmp_path / "a" / "b")):
    pass
  assert os.listdir(tmp_path) == []
  with RunLock(str(tmp_path / "a" / "b")):
    (tmp_path / "a" / "b" / "flags.json").write_text("{}")
  assert os.listdir(tmp_path / "a" / "b") == ["flags.json"]


def test_url_paths_are_not_locked(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with RunLock("gs://bucket/run") as lock:
    assert not lock.enabled
  assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ stale locks
def test_the_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
  directory = str(tmp_path)
  pid = _dead_pid()
  _write_lock(directory, pid=pid, start_ticks=12345)
  with RunLock(directory):
    assert _read_lock(directory)["pid"] == os.getpid()
  assert capsys.readouterr().out == (
      f"Took over the lock of --model_dir={directory} from process {pid} on {HOST} "
      f"(started 2030-01-01T00:00:00): process {pid} no longer runs.\n")
  assert not os.path.exists(os.path.join(directory, ".lock"))


def test_the_lock_of_a_reused_pid_is_taken_over(tmp_path, capsys):
  """The recorded pid runs, but it is another process: it started at another time."""
  if run_lock.process_start_ticks(os.getpid()) is None:
    pytest.skip("no /proc/PID/stat here")
  directory = str(tmp_path)
  ticks = run_lock.process_start_ticks(os.getpid())
  _write_lock(directory, start_ticks=ticks - 1)
  with RunLock(directory):
    pass
  assert (f"process {os.getpid()} no longer runs (its pid now belongs to another "
          "process).") in capsys.readouterr().out


def test_a_lock_from_before_a_reboot_is_taken_over(tmp_path, capsys):
  if run_lock._boot_id() is None:  # pylint: disable=protected-access
    pytest.skip("no boot id here")
  directory = str(tmp_path)
  _write_lock(directory, boot_id="another-boot")
  with RunLock(directory):
    pass
  assert "the machine has restarted since." in capsys.readouterr().out


# ------------------------------------------------------------------ training
def test_train_refuses_a_directory_in_use_before_writing_anything(tmp_path, sleeper,
                                                                  default_strategy):
  config = tiny_config(tmp_path / "run")
  _write_lock(config.model_dir, pid=sleeper.pid,
              start_ticks=run_lock.process_start_ticks(sleeper.pid))
  with pytest.raises(RunLockedError, match=f"in use by process {sleeper.pid} "):
    trainer.train(config, default_strategy)
  assert os.listdir(config.model_dir) == [".lock"]


def _checkpoint_files(model_dir):
  """{name: bytes} of the checkpoint files and flags.json."""
  out = {}
  checkpoint_dir = os.path.join(model_dir, "checkpoints")
  paths = [os.path.join(model_dir, "flags.json")] + [
      os.path.join(checkpoint_dir, n) for n in os.listdir(checkpoint_dir)
      if n.startswith("ckpt-")]
  for path in paths:
    with open(path, "rb") as f:
      out[path] = f.read()
  return out


def _wait(condition, process, what, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if condition():
      return
    if process.poll() is not None:
      raise AssertionError(f"the first training ended before {what}")
    time.sleep(0.2)
  raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
  """The uninterrupted run of the settings below (shared with other test files: read
  only)."""
  return shared.base_run(tmp_path_factory)[0]


def test_a_second_training_is_refused_and_a_killed_one_resumes_exactly(
    tmp_path, capsys, whole_run):
  """The first training is a process of its own, SIGKILLed after its first
  checkpoint; the refused second training and the resumed one run the command line's
  `main` in this process (what they do with the lock and the checkpoints does not
  depend on the process they run in)."""
  model_dir = str(tmp_path / "run")
  # The settings of `whole_run`.
  args = ["--trainer.train_steps=300", "--eval.every=100",
          "--trainer.steps_per_execution=50", "--eval.num_samples=2000",
          "--trainer.keep_checkpoints=10"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  first = subprocess.Popen(
      [sys.executable, "-m", "tf_stackelberg.main", f"--model_dir={model_dir}", *args],
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  lock_path = os.path.join(model_dir, ".lock")
  checkpoint_dir = checkpoints.directory_of(model_dir)
  try:
    _wait(lambda: os.path.exists(lock_path) and _read_lock(model_dir).get("pid"),
          first, "it held the lock")
    assert _read_lock(model_dir)["pid"] == first.pid
    _wait(lambda: tf.train.latest_checkpoint(checkpoint_dir), first, "a checkpoint")
    # Held where it stands (alive, holding its lock), so that it cannot finish its
    # 300 steps before it is killed.
    first.send_signal(signal.SIGSTOP)
    before = _checkpoint_files(model_dir)

    assert run_main(f"--model_dir={model_dir}", *args) == 2
    err = capsys.readouterr().err
    assert (f"error: --model_dir={model_dir} is in use by process {first.pid} on "
            f"{HOST} (started ") in err
    assert "; wait for it or stop it" in err
    assert first.poll() is None  # still running, its files untouched
    after = _checkpoint_files(model_dir)
    assert all(after[path] == data for path, data in before.items())
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()

  assert _read_lock(model_dir)["pid"] == first.pid  # left behind: stale
  killed_at = checkpoints.number(checkpoints.find(checkpoint_dir)[0][0])
  assert killed_at < 300  # it really was interrupted
  assert run_main(f"--model_dir={model_dir}", *args) == 0
  out = capsys.readouterr().out
  assert (f"Took over the lock of --model_dir={model_dir} from process {first.pid} "
          f"on {HOST} (started ") in out
  assert f"process {first.pid} no longer runs." in out
  assert f"Resuming {model_dir} from step {killed_at}." in out
  assert not os.path.exists(lock_path)
  assert tf.train.latest_checkpoint(checkpoint_dir).endswith("ckpt-300")
  with open(os.path.join(model_dir, "metrics.json")) as f:
    assert json.load(f)["step"] == 300
  # Same seed, same run, killed or not.
  assert_same_checkpoints(whole_run.model_dir, model_dir)
