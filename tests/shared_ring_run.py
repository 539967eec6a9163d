"""A trained ring run shared by the test files that need one: training it takes most
of a test's time, and every file asked for the same run.

It is trained once per test session, in the first process that asks for it (the other
worker processes wait for it and then read it), so a test must never write into it:
one that trains, evaluates or damages files works on `copy_run` (a half-written file
or a lock taken by one test would otherwise show up in another process's copy).
"""

import shutil

from conftest import session_trained_run, tiny_config

# 300 steps (eval and checkpoints every 100), every checkpoint kept.
BASE_SETTINGS = {"trainer.train_steps": 300, "trainer.keep_checkpoints": 10}


def base_run(tmp_path_factory):
  """`(config, final)`: the shared 300-step run and what `trainer.train` returned when
  it was trained."""
  return session_trained_run(tmp_path_factory, "ring_run_300_steps", BASE_SETTINGS)


def copy_run(config, destination, **overrides):
  """A copy of `config`'s run directory at `destination` and the copy's config
  (`tiny_config` of the shared run's settings and `overrides`)."""
  shutil.copytree(config.model_dir, destination)
  return tiny_config(destination, **{**BASE_SETTINGS, **overrides})
