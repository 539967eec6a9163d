"""The mode registry: `@register_mode(name, uses_trained_run)` on a function
`(config, strategy) -> result`, one module per mode in `tf_stackelberg/modes/`."""

import collections

from tf_stackelberg.common.registry import Registry

MODES = Registry("mode", package="tf_stackelberg.modes", flag="--mode")

Mode = collections.namedtuple("Mode", ["run", "uses_trained_run"])
Mode.__doc__ = """A command-line mode.

Attributes:
  run: `(config, strategy) -> result`.
  uses_trained_run: the mode works on the run already in `--model_dir`, whose
    run-defining settings replace the flags' (train starts or resumes one instead).
"""


def register_mode(name, uses_trained_run=True):
  """Registers the decorated `(config, strategy)` function as mode `name`."""
  def decorate(fn):
    MODES.register(name)(Mode(fn, uses_trained_run))
    return fn
  return decorate
