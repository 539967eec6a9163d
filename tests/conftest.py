"""Shared test settings: quiet TensorFlow, small runs, helpers for subprocess runs."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top

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


@pytest.fixture
def default_strategy():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.distribute.get_strategy()
