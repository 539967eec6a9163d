"""Shared test settings: quiet TensorFlow, small runs, helpers for subprocess runs."""

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top

from tf_stackelberg.config.sections import DataConfig  # pylint: disable=g-import-not-at-top
from tf_stackelberg.data import tfds_loader  # pylint: disable=g-import-not-at-top
from tf_stackelberg.data.registry import DATASETS  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The settings of `tiny_config`, as flag names.
TINY_SETTINGS = {"trainer.train_steps": 200, "eval.every": 100,
                 "trainer.steps_per_execution": 50, "eval.num_samples": 2000}


def tiny_config(model_dir, **overrides):
  """A validated ring run small enough for a test: a few hundred steps in seconds.

  Args:
    model_dir: the run directory.
    **overrides: settings by flag name, e.g.
      `tiny_config(path, **{"trainer.keep_checkpoints": 5, "seed": 3})`.
  """
  from tf_stackelberg.config.sections import Config  # pylint: disable=g-import-not-at-top
  values = {"model_dir": str(model_dir), **TINY_SETTINGS, **overrides}
  return Config().replace(**values).validate()


def trained_run(model_dir, **overrides):
  """`(config, run)`: a `tiny_config` run trained in this process, then restored into a
  fresh `Run` (as the export and sample modes restore it)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.training import trainer  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.training.run import Run  # pylint: disable=g-import-not-at-top
  config = tiny_config(model_dir, **overrides)
  strategy = tf.distribute.get_strategy()
  trainer.train(config, strategy)
  run = Run(config, strategy)
  run.restore(require=True)
  return config, run


def saved_tensors(prefix, skip=("_CHECKPOINTABLE_OBJECT_GRAPH",)):
  """Every tensor of the TensorFlow checkpoint at `prefix` (a run's checkpoint, a
  SavedModel's `variables/variables`) by key, but the keys in `skip`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map() if name not in skip}


def checkpoint_tensors(model_dir):
  """Every saved tensor of the run's latest checkpoint (models, BatchNorm statistics,
  optimizer slots and step counters), by checkpoint key."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  return saved_tensors(path, skip=("_CHECKPOINTABLE_OBJECT_GRAPH",
                                   "save_counter/.ATTRIBUTES/VARIABLE_VALUE"))


def assert_same_tensors(expected, got):
  """Two `{key: tensor}` of checkpoints hold the same keys (at least 20: a whole
  game) and the same tensors, bit for bit."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  assert expected.keys() == got.keys() and len(expected) >= 20
  for name in expected:
    np.testing.assert_array_equal(expected[name], got[name], err_msg=name)


def assert_same_checkpoints(expected_dir, got_dir):
  """The latest checkpoints of two runs hold the same tensors, bit for bit."""
  assert_same_tensors(checkpoint_tensors(expected_dir), checkpoint_tensors(got_dir))


def file_digests(directory):
  """{path relative to `directory`: sha256} of every file under `directory`, to
  compare a directory before and after something that must not change it."""
  out = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return out


def load_tool(name):
  """The module of `tools/<name>.py`, loaded from this checkout (tools are scripts,
  not a package)."""
  tools = os.path.join(REPO, "tools")
  # Run as a script, a tool has its own folder first on the import path, where it
  # finds the library the tools share (`toolkit`); loaded here, it needs it too.
  if tools not in sys.path:
    sys.path.insert(0, tools)
  spec = importlib.util.spec_from_file_location(name, os.path.join(tools, f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def run_cli(*args, timeout=600, check=False):
  """Runs `python -m tf_stackelberg.main ARGS` in a fresh process; returns the result."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-m", "tf_stackelberg.main", *args],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
  if check and result.returncode:
    raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
  return result


def run_main(*args):
  """Runs the command line's `main` in this process (flags parsed into the global flag
  values, as `app.run` does); returns its exit status (0 when it returned normally)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tf_stackelberg import main as main_lib  # pylint: disable=g-import-not-at-top
  flags.FLAGS(["prog", *args])
  try:
    main_lib.main(["prog"])
  except SystemExit as e:
    return e.code
  finally:
    flags.FLAGS.unparse_flags()
  return 0


def run_main_printed(*args):
  """`run_main(*args)` with its standard output captured (for fixtures, which have
  no `capsys`): `(exit status, printed text)`."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    status = run_main(*args)
  return status, printed.getvalue()


def session_trained_run(tmp_path_factory, name, settings):
  """`(config, final)`: the `tiny_config` run of `settings` trained once per test
  session under the name `name` (the first worker process trains it under a lock,
  the others wait and read it), and what `trainer.train` returned. Tests read it and
  never write into it; one that writes works on a copy."""
  import pickle  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  root = shared_session_dir(tmp_path_factory, name)
  config = tiny_config(os.path.join(root, "run"), **settings)
  os.makedirs(root, exist_ok=True)
  done = os.path.join(root, "trained.pickle")
  with session_lock(root):
    if not os.path.isfile(done):
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      from tf_stackelberg.training import trainer  # pylint: disable=g-import-not-at-top
      shutil.rmtree(config.model_dir, ignore_errors=True)  # a build that did not finish
      final = trainer.train(config, tf.distribute.get_strategy())
      with open(done + ".tmp", "wb") as f:
        pickle.dump(final, f)
      os.replace(done + ".tmp", done)
    with open(done, "rb") as f:
      return config, pickle.load(f)


@pytest.fixture
def default_sigint():
  """SIGINT raises `KeyboardInterrupt` during the test, as in an interactive shell:
  a process started in the background by a non-interactive shell inherits SIGINT
  ignored, and Python then keeps it ignored."""
  import signal  # pylint: disable=g-import-not-at-top
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def default_strategy():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.distribute.get_strategy()


# ------------------------------------------------------------------ image data
# The real offline data is prepared once per test session into a temporary TFDS data
# directory (MNIST: 20-40 s); a copy already prepared in the user's cache is linked
# instead. TF_STACKELBERG_FRESH_DATA=1 prepares everything afresh, as on a clean
# machine.
FRESH_ENV = "TF_STACKELBERG_FRESH_DATA"


def _link_prepared(user_dir, directory, builder_cls):
  """Links the prepared `builder_cls` of `user_dir` (and its decoded arrays) into
  `directory`; False if it is not prepared there."""
  version = str(builder_cls.VERSION)
  source = os.path.join(user_dir, builder_cls.name, version)
  if not os.path.isfile(os.path.join(source, "dataset_info.json")):
    return False
  os.makedirs(os.path.join(directory, builder_cls.name))
  os.symlink(source, os.path.join(directory, builder_cls.name, version))
  decoded = ("tf_stackelberg_decoded", builder_cls.name, version)
  for split in ("train", "test"):
    npz = os.path.join(user_dir, *decoded, f"{split}.npz")
    if os.path.isfile(npz):  # a file link: a rebuilt cache replaces the link only
      os.makedirs(os.path.join(directory, *decoded), exist_ok=True)
      os.symlink(npz, os.path.join(directory, *decoded, f"{split}.npz"))
  return True


def shared_session_dir(tmp_path_factory, name):
  """`name` in a temporary directory that every worker process of this test session
  sees (pytest-xdist gives each worker its own base directory under one parent), so
  that expensive session data is made once."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent
  return os.path.join(str(root), name)


@contextlib.contextmanager
def session_lock(path):
  """Holds an exclusive lock on `path.lock` (one worker builds, the others wait)."""
  with open(path + ".lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def offline_data_dir(tmp_path_factory):
  """(TFDS data directory, names of the datasets linked from the user's cache),
  shared by the session's worker processes; datasets not linked are prepared into
  it by the first test that needs them (under the loader's own preparation lock)."""
  directory = shared_session_dir(tmp_path_factory, "tfds_data")
  marker = os.path.join(directory, "linked.json")
  with session_lock(directory):
    if os.path.isfile(marker):
      with open(marker, encoding="utf-8") as f:
        return directory, set(json.load(f))
    os.makedirs(directory, exist_ok=True)
    linked = set()
    from tf_stackelberg.data.offline import builders  # pylint: disable=import-outside-toplevel
    if not os.environ.get(FRESH_ENV):
      user_dir = tfds_loader.data_dir(DataConfig())
      for name, (builder_cls, _, _) in builders.OFFLINE.items():
        if _link_prepared(user_dir, directory, builder_cls):
          linked.add(name)
    with open(marker, "w", encoding="utf-8") as f:
      json.dump(sorted(linked), f)
  return directory, linked


def offline_config(data_dir, dataset="mnist", **values):
  """The `DataConfig` of `dataset` read from the offline copies into `data_dir`."""
  return DataConfig(dataset=dataset, source="offline", data_dir=data_dir, **values)


@pytest.fixture(scope="session")
def mnist(offline_data_dir):
  return DATASETS.get("mnist")(offline_config(offline_data_dir[0]))




@pytest.fixture(scope="session")
def mnist_classifier_dir(tmp_path_factory, offline_data_dir):
  """A classifier cache with an MNIST classifier that tools/train_classifier.py trains
  on 4000 examples for one epoch (about 90% test accuracy)."""
  directory = shared_session_dir(tmp_path_factory, "classifiers")
  with session_lock(directory):
    if not os.path.isfile(os.path.join(directory, "mnist.keras")):
      _train_test_classifier(directory, offline_data_dir[0])
  return directory


def _train_test_classifier(directory, data_dir):
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, "tools", "train_classifier.py"),
       "--dataset=mnist", "--train_examples=4000", "--epochs=1", "--batch_size=32",
       f"--eval.classifier_dir={directory}", "--data.source=offline",
       f"--data.data_dir={data_dir}"],
      cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
      text=True, timeout=600)
  assert result.returncode == 0, result.stdout + result.stderr
  assert "MNIST: test accuracy" in result.stdout


# The modules that take longest, longest first (by the durations `make test` prints,
# on 2 cores): `make test` hands whole modules to two workers in collection order
# (`--no-loadscope-reorder`; xdist would otherwise order them by their number of
# tests, which put the one-test quick start last), so that the short modules fill
# the end and both workers finish together.
LONGEST_MODULES = (
    "test_image_gan.py", "test_quick_start.py", "test_replicas.py", "test_training.py",
    "test_sampling_distributed.py", "test_export.py", "test_latent_prior.py",
    "test_benchmark_sampling.py", "test_checkpoints.py", "test_mcmc_endpoint.py",
    "test_cli.py", "test_benchmark_training.py", "test_sampling_runner.py",
    "test_wl_unbiased.py", "test_conv_models.py", "test_benchmark_scaling.py",
    "test_image_evaluation.py", "test_game.py", "test_sample_mode.py",
    "test_skewed_control.py", "test_sampling_health.py", "test_scale_out.py",
    "test_record_steps.py", "test_sampling_wang_landau.py", "test_run_lock.py",
    "test_sampling_bounded_prior.py", "test_eval_inputs.py", "test_energy_health.py",
    "test_external_gan.py")


def pytest_collection_modifyitems(items):
  """Runs the `LONGEST_MODULES` first, then the others in their usual order."""
  def rank(item):
    name = os.path.basename(str(item.fspath))
    return (LONGEST_MODULES.index(name) if name in LONGEST_MODULES
            else len(LONGEST_MODULES))
  items.sort(key=rank)  # stable: tests keep their order within a module
