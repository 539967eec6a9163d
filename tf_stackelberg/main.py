r"""Command-line entry point: train, evaluate, export or sample a Stackelberg GAN.

Settings resolve in the order: defaults (`tf_stackelberg/config/sections.py`) ->
`--flagfile` -> command-line flags. Examples:

  python -m tf_stackelberg.main --flagfile=configs/mog_ring.cfg
  python -m tf_stackelberg.main --flagfile=configs/mog_ring.cfg --mode=eval
  python -m tf_stackelberg.main --model_dir=runs/mog_ring --mode=export
  python -m tf_stackelberg.main --model_dir=runs/mog_ring --mode=sample \
      --sampling.sampler=wl
  python -m tf_stackelberg.main --mode=sample --data.dataset=mnist \
      --sampling.generator_file=g.keras --sampling.discriminator_file=d.keras \
      --sampling.latent_dim=64

`train` starts a run, or resumes it from the latest checkpoint in `--model_dir`. The
other modes load the settings the run was trained with from `MODEL_DIR/flags.json`;
run-defining flags given explicitly must agree with them. `--mode=sample` on a GAN
trained elsewhere (`--sampling.generator_file`) has no run directory and reads none.

Exit status: 0 on success; 1 when the environment fails (an unwritable or full
directory); 2 for invalid settings, flags or input files, an unusable run or output
directory, or a run directory in use by another training; 3 when training stopped on a
non-finite loss; 4 when a sampler failed its health check (its outputs are kept); 130
after Ctrl-C and 143 after SIGTERM (training first writes the checkpoint of its current
step; other modes remove what they had staged).
"""

import os
import signal
import sys

# Flags are defined and parsed before TensorFlow loads, so that `--help` and a bad
# flag answer at once; the modes import TensorFlow (`_load_program`).
from absl import app
from absl import flags
from absl import logging

from tf_stackelberg.common.errors import ConfigError, StorageError
from tf_stackelberg.config import flags as config_flags

config_flags.define_flags()
FLAGS = flags.FLAGS

EXIT_ENVIRONMENT = 1
EXIT_BAD_CONFIG = 2
EXIT_DIVERGED = 3
EXIT_UNHEALTHY_SAMPLING = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def _load_program():
  """Imports TensorFlow (quietly, before anything else does) and the modes; returns
  {error class: exit status} of the errors reported as one line."""
  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.console import startup
  startup.import_tensorflow_quietly()
  from tf_stackelberg.modes.sample import UnhealthySampling
  from tf_stackelberg.training.trainer import TrainingDivergedError
  # pylint: enable=g-import-not-at-top
  return ((ConfigError, EXIT_BAD_CONFIG), (StorageError, EXIT_ENVIRONMENT),
          (TrainingDivergedError, EXIT_DIVERGED),
          (UnhealthySampling, EXIT_UNHEALTHY_SAMPLING))


def resolve(explicit=None):
  """The validated `Config` of this invocation (trained settings for eval/export/
  sample)."""
  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.modes import names
  from tf_stackelberg.modes.registry import MODES
  from tf_stackelberg.training import run_settings
  # pylint: enable=g-import-not-at-top
  config = config_flags.config_from_flags()
  config.validate()
  names.check_names(config)
  explicit = config_flags.explicitly_set() if explicit is None else explicit
  if config.sampling.generator_file:
    _check_external(explicit)
  elif MODES.get(config.mode).uses_trained_run:
    config = run_settings.resolve_trained(config, explicit)
  return config


# Flags that describe a trained run, which a GAN trained elsewhere does not have.
_RUN_FLAG_PREFIXES = ("model_dir", "model.", "loss.", "game.", "trainer.")


def _check_external(explicit):
  """A GAN trained elsewhere (`--sampling.generator_file`) has no run directory and
  no run settings: refuses the flags that would describe one."""
  given = sorted(name for name in explicit if name.startswith(_RUN_FLAG_PREFIXES))
  if given:
    raise ConfigError(f"--{given[0]} describes a trained run; with "
                      "--sampling.generator_file the model comes from the files (its "
                      "latent: --sampling.latent_dim, --sampling.latent_prior)")


def run_mode(config):
  """Runs `config.mode` under the strategy of `--runtime.*`; returns its result."""
  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.modes.registry import MODES
  from tf_stackelberg.training.strategy import make_strategy
  # pylint: enable=g-import-not-at-top
  strategy = make_strategy(config.runtime)
  config.validate(strategy.num_replicas_in_sync)
  return MODES.get(config.mode).run(config, strategy)


def _exit_now(status):
  """Exits at once: everything is written and closed, and TensorFlow's teardown
  (about 2 s) would only delay the prompt."""
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  exit_status = _load_program()
  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.console import interrupt
  # pylint: enable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)  # SavedModel/TF INFO chatter
  # SIGTERM unwinds like Ctrl-C: staging folders are removed, locks released;
  # training turns it into a stop at the next step (`interrupt.StopRequest`).
  previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
  interrupt.terminate_by_exception()
  try:
    run_mode(resolve())
  except (Exception, KeyboardInterrupt, interrupt.Terminated) as e:  # pylint: disable=broad-except
    _exit_for(e, exit_status, interrupt)
  finally:
    for signum, handler in previous.items():
      if handler is not None:
        signal.signal(signum, handler)


def _exit_for(error, exit_status, interrupt):
  """Reports `error` in one line and exits with its status; re-raises an error that
  is a bug (its traceback is what a report needs)."""
  if isinstance(error, interrupt.Interrupted):  # a requested stop: no error
    print(f"\n{error}", file=sys.stderr)
    _exit_now(error.exit_status)
  # A signal's exception may arrive re-typed by C code it crossed (interrupt.py).
  signum = (signal.SIGINT if isinstance(error, KeyboardInterrupt) else
            signal.SIGTERM if isinstance(error, interrupt.Terminated) else
            interrupt.raised_signal())
  if signum == signal.SIGINT:
    print("\nerror: interrupted; files are written whole or not at all, so nothing "
          "half-written was left", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)
  if signum == signal.SIGTERM:
    print("\nerror: terminated (SIGTERM); files are written whole or not at all, so "
          "nothing half-written was left", file=sys.stderr)
    _exit_now(EXIT_TERMINATED)
  for error_class, status in exit_status:
    if isinstance(error, error_class):
      print(f"error: {error}", file=sys.stderr)
      sys.exit(status)
  raise error


_HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "?")


def flagfiles_first(argv):
  """`argv` with its `--flagfile` arguments moved to the front, so that a flag given
  on the command line overrides the flagfile wherever it stands (absl reads left to
  right: `--model_dir=x --flagfile=c.cfg` would let the file's model_dir win)."""
  files, others, rest = [], [], list(argv[1:])
  while rest:
    arg = rest.pop(0)
    if arg == "--":
      others += [arg] + rest
      break
    name = arg.lstrip("-").split("=", 1)[0]
    if arg.startswith("-") and name == "flagfile":
      files.append(arg)
      if "=" not in arg and rest:  # `--flagfile PATH`
        files.append(rest.pop(0))
    else:
      others.append(arg)
  return argv[:1] + files + others


def parse_flags(argv):
  """absl's flag parsing, with a bad flag reported like every other bad input: one
  line naming it, exit status 2 (absl's own parser exits 1). Command-line flags
  override the flagfile's wherever they stand (`flagfiles_first`)."""
  argv = flagfiles_first(argv)
  try:
    return FLAGS(argv)
  except SystemExit:
    # absl prints the help text, then exits 1; asking for help is no failure.
    if any(a.lstrip("-") in _HELP_FLAGS for a in argv[1:]):
      sys.exit(0)
    raise
  except flags.Error as e:
    message = " ".join(str(e).split()).removeprefix("ERROR:: ")
    print(f"error: {message} (see --helpfull)", file=sys.stderr)
    sys.exit(EXIT_BAD_CONFIG)


def run():
  """Console-script entry point (`tf_stackelberg ...`)."""
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
