r"""Command-line entry point: train, evaluate, export or sample a Stackelberg GAN.

Settings resolve in the order: defaults (`tf_stackelberg.config.Config`) -> `--flagfile`
-> command-line flags. Examples:

  python -m tf_stackelberg.main --flagfile=configs/mog_ring.cfg
  python -m tf_stackelberg.main --flagfile=configs/mog_ring.cfg --mode=eval
  python -m tf_stackelberg.main --model_dir=runs/mog_ring --mode=export
  python -m tf_stackelberg.main --model_dir=runs/mog_ring --mode=sample --sampler=wl

`train` starts a run, or resumes it from the latest checkpoint in `--model_dir`. The
other modes load the settings the run was trained with from `MODEL_DIR/flags.json`;
model flags given explicitly must agree with them.

Exit status: 0 on success, 2 for invalid flags or an unusable model directory,
3 when training stopped on a non-finite loss.
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep TF's INFO lines out of the log

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from tf_stackelberg import config as config_lib
from tf_stackelberg.config import flags as config_flags

config_flags.define_flags()
FLAGS = flags.FLAGS

EXIT_BAD_CONFIG = 2
EXIT_DIVERGED = 3


def resolve_trained(config, explicit):
  """`config` with the model settings of the run already in `config.model_dir`.

  Raises `ConfigError` when a model flag given explicitly disagrees with the run.
  """
  saved = config_lib.read_resolved(config.model_dir)
  conflicts = [f"--{name}: run has {getattr(saved, name)!r}, flag says "
               f"{getattr(config, name)!r}"
               for name in sorted(explicit - config_lib.RUNTIME_FIELDS)
               if getattr(saved, name) != getattr(config, name)]
  if conflicts:
    raise config_lib.ConfigError(
        f"flags disagree with the run in --model_dir={config.model_dir}:\n  "
        + "\n  ".join(conflicts))
  runtime = {name: getattr(config, name) for name in config_lib.RUNTIME_FIELDS}
  return dataclasses.replace(saved, **runtime)


def run_mode(config):
  """Runs `config.mode`; returns the result (metrics dict or output path)."""
  # Imported here so that flag errors are reported before TensorFlow starts up.
  from tf_stackelberg import training  # pylint: disable=g-import-not-at-top
  strategy = training.make_strategy(config.cpu_replicas)
  config_lib.validate(config, strategy.num_replicas_in_sync)
  if config.mode == "train":
    return training.train(config, strategy)
  if config.mode == "eval":
    return training.evaluate(config, strategy)
  if config.mode == "export":
    from tf_stackelberg.export import cli as export_cli  # pylint: disable=g-import-not-at-top
    return export_cli.export_run(config, strategy)
  from tf_stackelberg.sampling import cli as sampling_cli  # pylint: disable=g-import-not-at-top
  return sampling_cli.sample_run(config, strategy)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # SavedModel/TF INFO chatter
  try:
    config = config_flags.config_from_flags()
    config_lib.validate(config, 1)
    if config.mode != "train":
      config = resolve_trained(config, config_flags.explicitly_set())
    run_mode(config)
  except config_lib.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(EXIT_BAD_CONFIG)
  except Exception as e:  # pylint: disable=broad-except
    from tf_stackelberg.export import ExportError  # pylint: disable=g-import-not-at-top
    from tf_stackelberg.training import TrainingDivergedError  # pylint: disable=g-import-not-at-top
    if isinstance(e, ExportError):
      print(f"error: {e}", file=sys.stderr)
      sys.exit(EXIT_BAD_CONFIG)
    if isinstance(e, TrainingDivergedError):
      print(f"error: {e}", file=sys.stderr)
      sys.exit(EXIT_DIVERGED)
    raise


def run():
  """Console-script entry point (`tf_stackelberg ...`)."""
  app.run(main)


if __name__ == "__main__":
  run()
