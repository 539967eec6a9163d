r"""Command-line entry point: train, evaluate, export or sample a Stackelberg GAN.

Settings resolve in the order: defaults (`tf_stackelberg/config/sections.py`) ->
`--flagfile` -> command-line flags. Examples:

  python -m tf_stackelberg.main --flagfile=configs/mog_ring.cfg
  python -m tf_stackelberg.main --flagfile=configs/mog_ring.cfg --mode=eval
  python -m tf_stackelberg.main --model_dir=runs/mog_ring --mode=export
  python -m tf_stackelberg.main --model_dir=runs/mog_ring --mode=sample \
      --sampling.sampler=wl

`train` starts a run, or resumes it from the latest checkpoint in `--model_dir`. The
other modes load the settings the run was trained with from `MODEL_DIR/flags.json`;
run-defining flags given explicitly must agree with them.

Exit status: 0 on success, 1 for an unknown flag (absl), 2 for invalid settings or an
unusable model or output directory, 3 when training stopped on a non-finite loss.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep TF's INFO lines out of the log

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position

from tf_stackelberg.common.errors import ConfigError  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_stackelberg.config import flags as config_flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_stackelberg.config import names, resolved  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_stackelberg.modes.registry import MODES  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_stackelberg.training.strategy import make_strategy  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_stackelberg.training.trainer import TrainingDivergedError  # pylint: disable=g-import-not-at-top,wrong-import-position

config_flags.define_flags()
FLAGS = flags.FLAGS

EXIT_BAD_CONFIG = 2
EXIT_DIVERGED = 3


def resolve(explicit=None):
  """The validated `Config` of this invocation (trained settings for eval/export/
  sample)."""
  config = config_flags.config_from_flags()
  config.validate()
  names.check_names(config)
  if MODES.get(config.mode).uses_trained_run:
    config = resolved.resolve_trained(
        config, config_flags.explicitly_set() if explicit is None else explicit)
  return config


def run_mode(config):
  """Runs `config.mode` under the strategy of `--runtime.*`; returns its result."""
  strategy = make_strategy(config.runtime)
  config.validate(strategy.num_replicas_in_sync)
  return MODES.get(config.mode).run(config, strategy)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # SavedModel/TF INFO chatter
  try:
    run_mode(resolve())
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(EXIT_BAD_CONFIG)
  except TrainingDivergedError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(EXIT_DIVERGED)


def run():
  """Console-script entry point (`tf_stackelberg ...`)."""
  app.run(main)


if __name__ == "__main__":
  run()
