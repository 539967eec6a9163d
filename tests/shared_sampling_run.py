"""A trained ring run shared by the sampling tests that only read a run.

Training `tiny_config` with four generators for 300 steps takes 10-15 s; the test
modules that sample, diagnose, prepare or fine-tune a trained run all use this one
run, trained once per test session (worker processes included: the first trains it
under a lock, the others wait and read it). Tests that change the run directory work
on a copy (`copied_run`).
"""

import shutil

import pytest

from conftest import session_trained_run

# The run's settings, by flag name.
SETTINGS = {"trainer.train_steps": 300, "model.num_generators": 4}


def shared_trained_run(tmp_path_factory):
  """The validated `Config` of the shared trained run (read it, never write into it:
  `--mode=sample` would, e.g., pick up a prepared discriminator left in it)."""
  return session_trained_run(tmp_path_factory, "four_generator_run", SETTINGS)[0]


def copied_run(tmp_path_factory, name):
  """A copy of the shared trained run in a fresh directory, for a test that writes
  into its run directory."""
  source = shared_trained_run(tmp_path_factory)
  model_dir = tmp_path_factory.mktemp(name) / "run"
  shutil.copytree(source.model_dir, model_dir)
  return source.replace(model_dir=str(model_dir)).validate()


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
  """`Config` of the shared trained run (read only)."""
  return shared_trained_run(tmp_path_factory)
