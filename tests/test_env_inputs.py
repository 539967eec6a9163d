"""Environment waits and inputs that must end in one clear line, quickly: the whole
TF_CONFIG checked, the wait for a cluster's other tasks bounded, announced and ended
by SIGTERM or Ctrl-C, a TPU address or name that does not answer, a TFDS download
offline, a damaged prepared dataset, a data directory that is a file, a batch larger
than the training split, and TFDS's warning before preparing a dataset.

No test sends traffic anywhere but the loopback interface: `loopback_only` fails any
connection or name lookup of another host, and TFDS's GCS access. Services that do
not answer are ports of 127.0.0.1 that nothing listens on.
"""

import _thread
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import logging as absl_logging
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

from conftest import REPO, offline_config, run_main
from tf_stackelberg.common import reach
from tf_stackelberg.common.errors import ConfigError, DataError, NetworkError
from tf_stackelberg.config.sections import Config, DataConfig
from tf_stackelberg.console.interrupt import Interrupted
from tf_stackelberg.data import tfds_loader
from tf_stackelberg.data.datasets.stacked_mnist import StackedMnist
from tf_stackelberg.data.images import ImageData
from tf_stackelberg.data.mixtures import MixtureData, ring
from tf_stackelberg.training import strategy as strategy_lib

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
  """Fails the test on any connection or name lookup outside the loopback
  interface, and on any read of TFDS's GCS bucket."""
  attempts = []

  def guard(original, host_of):
    def guarded(*args, **kwargs):
      host = host_of(*args, **kwargs)
      if host not in LOOPBACK:
        attempts.append(host)
        raise AssertionError(f"a test tried to reach {host}")
      return original(*args, **kwargs)
    return guarded

  for name in ("connect", "connect_ex"):
    monkeypatch.setattr(socket.socket, name, guard(
        getattr(socket.socket, name), lambda sock, address: address[0]))
  monkeypatch.setattr(socket, "getaddrinfo", guard(
      socket.getaddrinfo, lambda host, *args, **kwargs: host))

  def refuse(*args, **kwargs):
    attempts.append("gcs")
    raise AssertionError("a test tried to read TFDS's GCS bucket")
  for name in ("exists", "download_gcs_folder", "download_gcs_dataset"):
    monkeypatch.setattr(gcs_utils, name, refuse)
  yield
  assert not attempts, f"network access outside loopback: {attempts}"


def closed_port():
  """A loopback port that nothing listens on (bound, then released)."""
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def tf_config(ports, index=0, job="worker"):
  return json.dumps({"cluster": {job: [f"127.0.0.1:{p}" for p in ports]},
                     "task": {"type": job, "index": index}})


def runtime(**values):
  return Config().replace(**{f"runtime.{k}": v for k, v in values.items()}).runtime


# ----------------------------------------------------------------- TF_CONFIG
WORKERS = ["127.0.0.1:2222", "127.0.0.1:2223"]


@pytest.mark.parametrize("spec, message", [
    ({"cluster": {"worker": "127.0.0.1:2222"}, "task": {"type": "worker", "index": 0}},
     'cluster.worker must be a non-empty list of "host:port" strings, got '
     '"127.0.0.1:2222"'),
    ({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}},
     "cluster.worker must be a non-empty list"),
    ({"cluster": ["127.0.0.1:2222"], "task": {"type": "worker", "index": 0}},
     "'cluster' must be a non-empty object of job lists"),
    ({"cluster": {"ps": WORKERS}, "task": {"type": "ps", "index": 0}},
     "names the job 'ps', but --runtime.strategy=multi_worker runs 'chief' and "
     "'worker' tasks only"),
    ({"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}},
     "cluster.worker[0]: '127.0.0.1' is not HOST:PORT with a port in 1-65535"),
    ({"cluster": {"worker": ["h:70000"]}, "task": {"type": "worker", "index": 0}},
     "cluster.worker[0]: 'h:70000' is not HOST:PORT"),
    ({"cluster": {"worker": [2222]}, "task": {"type": "worker", "index": 0}},
     "cluster.worker[0]: 2222 is not a string"),
    ({"cluster": {"chief": ["127.0.0.1:2222"], "worker": ["127.0.0.1:2222"]},
      "task": {"type": "worker", "index": 0}},
     "cluster.worker[0] and cluster.chief[0] are both 127.0.0.1:2222"),
    ({"cluster": {"chief": WORKERS}, "task": {"type": "chief", "index": 0}},
     "cluster.chief lists 2 addresses; a cluster has at most one chief"),
    ({"cluster": {"worker": WORKERS}, "task": {"type": "worker"}},
     "'task' must be an object with 'type' and 'index'"),
    ({"cluster": {"worker": WORKERS}, "task": "worker"},
     "'task' must be an object with 'type' and 'index'"),
    ({"cluster": {"worker": WORKERS}, "task": {"type": "chief", "index": 0}},
     'task type "chief" is not a job of its cluster (worker)'),
    ({"cluster": {"worker": WORKERS}, "task": {"type": "worker", "index": "one"}},
     'task index "one" is not an integer'),
    ({"cluster": {"worker": WORKERS}, "task": {"type": "worker", "index": True}},
     "task index true is not an integer"),
    ({"cluster": {"worker": WORKERS}, "task": {"type": "worker", "index": 1.5}},
     "task index 1.5 is not an integer"),
    ({"cluster": {"worker": WORKERS}, "task": {"type": "worker", "index": -1}},
     "task index -1 is not one of the 2 worker addresses of its cluster (0 to 1)"),
    (["not", "an", "object"], "is not a cluster description with a task"),
])
def test_every_part_of_tf_config_is_checked(monkeypatch, spec, message):
  monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
  with pytest.raises(ConfigError) as error:
    strategy_lib.cluster_spec()
  assert message in str(error.value)
  assert "\n" not in str(error.value)


def test_tf_config_that_is_not_json_is_named(monkeypatch):
  monkeypatch.setenv("TF_CONFIG", "{'cluster': 1}")
  with pytest.raises(ConfigError, match=r"TF_CONFIG is not JSON \(.*\); expected JSON "
                     r'like \{"cluster"'):
    strategy_lib.cluster_spec()


def test_valid_tf_config_is_returned_with_an_integer_index(monkeypatch):
  spec = {"cluster": {"chief": ["127.0.0.1:2221"], "worker": WORKERS},
          "task": {"type": "worker", "index": "1"}}
  monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
  parsed = strategy_lib.cluster_spec()
  assert parsed["task"] == {"type": "worker", "index": 1}
  assert strategy_lib.cluster_tasks(parsed) == [
      ("chief 0", "127.0.0.1:2221"), ("worker 0", WORKERS[0]),
      ("worker 1", WORKERS[1])]


def test_cli_reports_a_worker_string_in_one_line_with_exit_2(tmp_path, capsys,
                                                             monkeypatch):
  monkeypatch.setenv("TF_CONFIG", json.dumps(
      {"cluster": {"worker": "127.0.0.1:2222"}, "task": {"type": "worker", "index": 0}}))
  status = run_main("--runtime.strategy=multi_worker", f"--model_dir={tmp_path / 'run'}")
  err = capsys.readouterr().err.strip().splitlines()
  assert status == 2
  assert len(err) == 1 and err[0].startswith(
      'error: TF_CONFIG cluster.worker must be a non-empty list of "host:port" strings')
  assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------- cluster wait
def test_lone_worker_names_its_peer_and_gives_up_after_the_timeout(tmp_path, capsys,
                                                                    monkeypatch):
  peer = closed_port()
  monkeypatch.setenv("TF_CONFIG", tf_config([closed_port(), peer]))
  start = time.monotonic()
  status = run_main("--runtime.strategy=multi_worker", "--runtime.cluster_timeout_s=1.5",
                    f"--model_dir={tmp_path / 'run'}")
  elapsed = time.monotonic() - start
  err = capsys.readouterr().err.strip().splitlines()
  assert status == 1
  assert err[0] == (f"Waiting up to 1.5 s (--runtime.cluster_timeout_s) for worker 1 "
                    f"at 127.0.0.1:{peer} to start (worker 0 of the cluster in "
                    "TF_CONFIG) ...")
  assert err[-1] == (
      f"error: TF_CONFIG: worker 1 at 127.0.0.1:{peer} (connection refused: nothing "
      f"listens on port {peer}) did not start within 1.5 s "
      "(--runtime.cluster_timeout_s); start the same command with its own TF_CONFIG "
      "task on every task of the cluster, or allow more time with "
      "--runtime.cluster_timeout_s")
  assert 1.5 <= elapsed < 6
  assert not (tmp_path / "run").exists()


def test_cluster_timeout_must_be_positive():
  with pytest.raises(ConfigError, match="--runtime.cluster_timeout_s must be positive"):
    runtime(cluster_timeout_s=0.0).validate()
  assert runtime().cluster_timeout_s == 300.0


def _spec(ports, index):
  return {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
          "task": {"type": "worker", "index": index}}


def test_two_waiting_workers_find_each_other_and_free_their_ports():
  """Each task listens on its own port while it waits, so two tasks that start
  apart both see the other. Once a task's wait ends, its port is free at once for
  its TensorFlow server (a listening socket here), which the other task then sees."""
  ports = [closed_port(), closed_port()]
  servers, other = [], {}

  def worker(index, stream):
    strategy_lib.wait_for_cluster(_spec(ports, index), 20, stream)
    servers.append(socket.create_server(("127.0.0.1", ports[index])))

  def second_worker():
    time.sleep(0.7)
    other["stream"] = io.StringIO()
    try:
      worker(1, other["stream"])
    except Exception as e:  # pylint: disable=broad-except
      other["error"] = e

  thread = threading.Thread(target=second_worker)
  thread.start()
  stream = io.StringIO()
  start = time.monotonic()
  try:
    worker(0, stream)
    thread.join(20)
  finally:
    for server in servers:
      server.close()
  assert time.monotonic() - start < 10
  assert "error" not in other, other.get("error")
  assert len(servers) == 2
  for output in (stream.getvalue(), other["stream"].getvalue()):
    assert "Every task of the cluster answered after" in output
  assert f"for worker 1 at 127.0.0.1:{ports[1]} to start" in stream.getvalue()
  assert f"for worker 0 at 127.0.0.1:{ports[0]} to start" in other["stream"].getvalue()


def test_a_taken_port_of_this_task_is_named():
  with socket.create_server(("127.0.0.1", 0)) as taken:
    port = taken.getsockname()[1]
    with pytest.raises(NetworkError, match=rf"TF_CONFIG: the address of this task "
                       rf"\(worker 0, 127.0.0.1:{port}\) cannot be used on this host "
                       r"\(Address already in use\)"):
      strategy_lib.wait_for_cluster(_spec([port, closed_port()], 0), 20, io.StringIO())


@pytest.mark.parametrize("signal_name", ["SIGTERM", "Ctrl-C"])
def test_sigterm_and_ctrl_c_end_the_wait_at_once(signal_name, default_sigint):  # pylint: disable=unused-argument
  before = signal.getsignal(signal.SIGTERM)
  if signal_name == "SIGTERM":
    send = lambda: os.kill(os.getpid(), signal.SIGTERM)  # pylint: disable=unnecessary-lambda-assignment
  else:
    send = _thread.interrupt_main
  peer = closed_port()
  timer = threading.Timer(0.6, send)
  timer.start()
  start = time.monotonic()
  with pytest.raises(Interrupted, match=rf"stopped by {signal_name} after .* s of "
                     rf"waiting for worker 1 at 127.0.0.1:{peer}; nothing was "
                     "written"):
    strategy_lib.wait_for_cluster(_spec([closed_port(), peer], 0), 60, io.StringIO())
  timer.join()
  assert time.monotonic() - start < 5
  assert signal.getsignal(signal.SIGTERM) is before


def test_cli_exits_at_once_on_sigterm_during_the_wait(tmp_path):
  """The real signal to a real process: exit 130 within seconds, one error line."""
  peer = closed_port()
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO,
             TF_CONFIG=tf_config([closed_port(), peer]))
  process = subprocess.Popen(
      [sys.executable, "-m", "tf_stackelberg.main", "--runtime.strategy=multi_worker",
       f"--model_dir={tmp_path / 'run'}"], cwd=REPO, env=env, stderr=subprocess.PIPE,
      text=True)
  try:
    lines = []
    for line in process.stderr:  # TensorFlow's import may print first
      lines.append(line)
      if line.startswith("Waiting up to 300 s"):
        break
    assert f"worker 1 at 127.0.0.1:{peer}" in lines[-1], "".join(lines)
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    status = process.wait(timeout=20)
    rest = process.stderr.read().strip().splitlines()
  finally:
    if process.poll() is None:
      process.kill()
  assert status == 130 and time.monotonic() - start < 5, rest
  # A requested stop is not an error: no "error:" prefix (docs/usage.md).
  assert rest[-1].startswith("stopped by SIGTERM after "), rest
  assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------- TPU
def test_tpu_name_without_a_metadata_server_says_what_was_tried(tmp_path, capsys,
                                                               monkeypatch):
  port = closed_port()
  monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{port}")
  start = time.monotonic()
  status = run_main("--runtime.strategy=tpu", "--runtime.tpu=my-tpu",
                    f"--model_dir={tmp_path / 'run'}")
  err = capsys.readouterr().err.strip().splitlines()
  assert status == 1 and time.monotonic() - start < 5
  assert err[0].startswith("Looking up the TPU named 'my-tpu' through the Google "
                           f"Cloud metadata server at 127.0.0.1:{port}")
  assert err[-1].startswith(
      "error: --runtime.tpu=my-tpu: a TPU name is looked up through the Google Cloud "
      f"metadata server at 127.0.0.1:{port}, which does not answer from this host "
      f"(connection refused: nothing listens on port {port}; tried for ")
  assert err[-1].endswith("or give the TPU's address as --runtime.tpu=grpc://HOST:8470")
  assert not (tmp_path / "run").exists()


def test_tpu_name_needs_the_google_api_client(monkeypatch):
  with socket.create_server(("127.0.0.1", 0)) as metadata:
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{metadata.getsockname()[1]}")
    monkeypatch.setitem(sys.modules, "googleapiclient", None)  # not installed
    with pytest.raises(ConfigError, match="--runtime.tpu=my-tpu: looking up a TPU name "
                       "needs the package google-api-python-client"):
      strategy_lib.make_strategy(runtime(strategy="tpu", tpu="my-tpu"))


def test_tpu_address_where_nothing_listens_fails_within_seconds(tmp_path, capsys):
  port = closed_port()
  start = time.monotonic()
  status = run_main("--runtime.strategy=tpu", f"--runtime.tpu=grpc://127.0.0.1:{port}",
                    f"--model_dir={tmp_path / 'run'}")
  err = capsys.readouterr().err.strip().splitlines()
  assert status == 1 and time.monotonic() - start < 5
  assert err[0] == (f"Connecting to the TPU at 127.0.0.1:{port} (--runtime.tpu, at "
                    "most 10 s) ...")
  assert err[-1].startswith(
      f"error: --runtime.tpu=grpc://127.0.0.1:{port}: no TPU answers at "
      f"127.0.0.1:{port} (connection refused: nothing listens on port {port}; tried "
      "for 0.")


def test_tpu_address_that_never_answers_gives_up_at_the_bound(monkeypatch):
  """A host that swallows the connection: the wait ends at TPU_CONNECT_TIMEOUT_S."""
  def hang(*args, **kwargs):
    time.sleep(5)
  monkeypatch.setattr(reach.socket, "create_connection", hang)
  monkeypatch.setattr(strategy_lib, "TPU_CONNECT_TIMEOUT_S", 0.5)
  start = time.monotonic()
  with pytest.raises(NetworkError, match=r"no TPU answers at 127.0.0.1:8470 \(no "
                     r"answer within 0.5 s; tried for 0.5 s of at most 0.5 s\)"):
    strategy_lib.make_strategy(runtime(strategy="tpu", tpu="grpc://127.0.0.1:8470"))
  assert time.monotonic() - start < 2


@pytest.mark.parametrize("tpu", ["grpc://127.0.0.1", "grpc://:8470",
                                 "grpc://host:port", "grpc://host:0"])
def test_malformed_tpu_address_is_a_bad_setting(tpu):
  with pytest.raises(ConfigError, match=f"--runtime.tpu={tpu} is not grpc://HOST:PORT"):
    runtime(tpu=tpu).validate()


# ----------------------------------------------------------------- TFDS download
def test_offline_tfds_download_fails_within_seconds(tmp_path, capsys, monkeypatch):
  port = closed_port()
  monkeypatch.setattr(tfds_loader, "DOWNLOAD_PROBE", ("127.0.0.1", port))

  def refuse(*args, **kwargs):
    raise AssertionError("download_and_prepare was called")
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)
  data_dir = tmp_path / "tfds"
  start = time.monotonic()
  status = run_main("--data.dataset=celeb_a", "--data.source=tfds",
                    f"--data.data_dir={data_dir}", f"--model_dir={tmp_path / 'run'}")
  err = capsys.readouterr().err.strip().splitlines()
  assert status == 1 and time.monotonic() - start < 10
  assert err[0] == (f"celeb_a is not prepared in {data_dir}; checking that the "
                    f"download host 127.0.0.1:{port} answers (at most 5 s) ...")
  assert err[-1].startswith(
      "error: --data.source=tfds: tensorflow-datasets could not download and prepare "
      f"celeb_a into {data_dir} (--data.data_dir): the download host 127.0.0.1:{port} "
      f"does not answer (connection refused: nothing listens on port {port}; tried "
      "for ")
  assert not any("Variant folder" in line for line in err)
  assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------- prepared data
class TinyDigits(tfds.core.GeneratorBasedBuilder):
  """Fifty 8x8 labelled images: a prepared TFDS dataset made in a fraction of a
  second, to be damaged."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(8, 8, 1)),
        "label": tfds.features.ClassLabel(num_classes=10)}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(40), "test": self._generate_examples(10)}

  def _generate_examples(self, count):
    rng = np.random.RandomState(count)
    for i in range(count):
      yield i, {"image": rng.randint(0, 256, (8, 8, 1)).astype(np.uint8),
                "label": i % 10}


@pytest.fixture
def tiny_prepared(tmp_path):
  builder = TinyDigits(data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare()
  folder = os.fspath(builder.data_dir)
  shard = os.path.join(folder, builder.info.splits["train"].filenames[0])
  return builder, folder, shard


def test_intact_prepared_dataset_loads(tiny_prepared):
  builder, _, _ = tiny_prepared
  images, labels = tfds_loader.load_split(builder, "train")
  assert images.shape == (40, 8, 8, 1) and sorted(set(labels)) == list(range(10))


@pytest.mark.parametrize("damage, why", [
    ("truncated", "truncated record at "), ("missing", "missing")])
def test_damaged_prepared_dataset_names_the_file_and_the_remedy(tiny_prepared, damage,
                                                                why):
  builder, folder, shard = tiny_prepared
  if damage == "truncated":
    with open(shard, "rb") as f:
      data = f.read()
    with open(shard, "wb") as f:
      f.write(data[:-7])
  else:
    os.remove(shard)
  before = sorted(os.listdir(folder))
  with pytest.raises(DataError) as error:
    tfds_loader.load_split(builder, "train")
  message = str(error.value)
  assert isinstance(error.value, ConfigError)  # exit status 2
  assert message.startswith(f"the prepared dataset tiny_digits in {folder} is "
                            f"damaged: {shard}: {why}")
  assert message.endswith(f"Delete the folder {folder} and run again to prepare it "
                          "afresh (from the offline copy in --data.offline_dir, or by "
                          "tensorflow-datasets with --data.source=tfds)")
  assert "\n" not in message
  assert sorted(os.listdir(folder)) == before  # nothing deleted for the user
  assert not os.path.exists(tfds_loader._decoded_cache(builder, "train", ""))  # pylint: disable=protected-access


# ----------------------------------------------------------------- data_dir
def test_data_dir_that_is_a_file_is_named_in_one_line(tmp_path, capsys):
  path = tmp_path / "not_a_folder"
  path.write_text("keep me")
  for flag_value, what in [(path, "is a file"),
                           (path / "sub", f"is inside the file {path}")]:
    status = run_main("--data.dataset=mnist", f"--data.data_dir={flag_value}",
                      f"--model_dir={tmp_path / 'run'}")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err == [f"error: --data.data_dir={flag_value} {what}, not a folder; give "
                   "the path of a folder (it is created if missing)"]
  assert path.read_text() == "keep me"
  assert not (tmp_path / "run").exists()


def test_tfds_data_dir_variable_or_default_that_is_a_file_is_named(tmp_path, monkeypatch):
  path = tmp_path / "file"
  path.write_text("")
  monkeypatch.setenv("TFDS_DATA_DIR", str(path))
  with pytest.raises(ConfigError, match=rf"^\$TFDS_DATA_DIR={path} is a file"):
    tfds_loader.data_dir(DataConfig())
  monkeypatch.delenv("TFDS_DATA_DIR")
  monkeypatch.setenv("HOME", str(tmp_path))
  (tmp_path / "tensorflow_datasets").write_text("")
  with pytest.raises(ConfigError, match=rf"^{tmp_path}/tensorflow_datasets \(the "
                     r"default of --data.data_dir\) is a file, not a folder"):
    tfds_loader.data_dir(DataConfig())


# ----------------------------------------------------------------- batch vs data
def _images(count, shape=(8, 8, 1)):
  rng = np.random.default_rng(0)
  return (rng.integers(0, 256, (count, *shape), dtype=np.uint8),
          rng.integers(0, 10, count))


def test_size_is_only_compared_with_the_batch_where_it_sets_the_training_set():
  def config(**values):
    return Config().replace(model_dir="unused", **values)
  # MNIST ignores --data.size (it trains on its 60,000 training images).
  config(**{"data.dataset": "mnist", "game.batch_size": 10000}).validate()
  config(**{"data.dataset": "mnist", "data.size": 0,
            "game.batch_size": 65536}).validate()
  for dataset in ("ring", "grid", "stacked_mnist"):
    with pytest.raises(ConfigError, match=r"--data.size=100 is smaller than "
                       r"--game.batch_size=128; use a larger --data.size, 0 to draw"):
      config(**{"data.dataset": dataset, "data.size": 100,
                "game.batch_size": 128}).validate()
    config(**{"data.dataset": dataset, "data.size": 0,
              "game.batch_size": 65536}).validate()  # streamed


def test_batch_larger_than_the_training_split_is_refused():
  data = ImageData("tiny", _images(96), class_names=list("0123456789"))
  with pytest.raises(ConfigError, match=r"^--game.batch_size=128 is larger than the "
                     r"96 training examples of tiny \(--data.dataset=tiny\); use "
                     r"--game.batch_size=96 or less$"):
    data.check_batch_size(128)
  with pytest.raises(ConfigError, match="--game.batch_size=128 is larger than"):
    data.batches(128, seed=0)
  data.check_batch_size(96)
  assert next(iter(data.batches(96, seed=0, num_steps=1))).shape == (96, 8, 8, 1)


def test_streamed_sources_take_any_batch_and_fixed_sets_are_checked():
  digits = ImageData("digits", _images(200, (28, 28, 1)),
                     class_names=list("0123456789"))
  StackedMnist(digits, size=0, test_size=10).check_batch_size(65536)
  MixtureData(ring(), size=0).check_batch_size(65536)
  for data in (StackedMnist(digits, size=100, test_size=10),
               MixtureData(ring(), size=100)):
    with pytest.raises(ConfigError, match="--data.size=100 is smaller than "
                       "--game.batch_size=128"):
      data.check_batch_size(128)


def test_cli_refuses_a_batch_larger_than_mnist_before_building(tmp_path, capsys,
                                                               offline_data_dir):
  status = run_main("--data.dataset=mnist", "--data.source=offline",
                    f"--data.data_dir={offline_data_dir[0]}", "--data.size=0",
                    "--game.batch_size=65536", f"--model_dir={tmp_path / 'run'}")
  err = capsys.readouterr().err.strip().splitlines()
  assert status == 2
  assert err[-1] == ("error: --game.batch_size=65536 is larger than the 60,000 "
                     "training examples of MNIST (--data.dataset=mnist); use "
                     "--game.batch_size=60000 or less")
  assert not (tmp_path / "run" / "flags.json").exists()


# ----------------------------------------------------------------- TFDS warning
class _Records(logging.Handler):
  def __init__(self):
    super().__init__(logging.DEBUG)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


def test_no_dataset_info_warning_before_preparing(tmp_path, monkeypatch):
  """Asking an unprepared builder whether it is prepared makes TFDS warn that its
  folder has no dataset_info.json, right before the dataset is prepared: dropped.
  Its other warnings pass."""
  prepared = []

  def prepare(config, name, builder, folder, announce):  # pylint: disable=unused-argument
    absl_logging.warning("Variant folder %s has no %s", "x", "features.json")
    prepared.append(name)
  monkeypatch.setattr(tfds_loader, "_prepare", prepare)
  records = _Records()
  logger = absl_logging.get_absl_logger()
  logger.addHandler(records)
  try:
    tfds_loader.builder_for(offline_config(str(tmp_path / "tfds")), "mnist", "mnist")
    absl_logging.warning("Variant folder %s has no %s", "y", "dataset_info.json")
  finally:
    logger.removeHandler(records)
  assert prepared == ["mnist"]
  assert records.messages == ["Variant folder x has no features.json",
                              "Variant folder y has no dataset_info.json"]

