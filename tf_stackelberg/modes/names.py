"""Checks every registry-backed setting against its registry (unknown names are
refused with the list of known names).

It lives with the modes, the layer that dispatches to every registry, because the
settings themselves (`tf_stackelberg.config`) import none of them.
"""

from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.evaluation.registry import EVALUATORS
from tf_stackelberg.game.losses.registry import LOSSES
from tf_stackelberg.models.registry import DISCRIMINATORS, GENERATORS
from tf_stackelberg.modes.registry import MODES
from tf_stackelberg.sampling.registry import SAMPLERS


def check_names(config):
  """Raises `ConfigError` for the first setting that names no registered entry."""
  MODES.check(config.mode)
  DATASETS.check(config.data.dataset)
  GENERATORS.check(config.model.generator)
  DISCRIMINATORS.check(config.model.discriminator)
  LOSSES.check(config.loss.family)
  for name in config.eval.evaluators:
    EVALUATORS.check(name)
  SAMPLERS.check(config.sampling.sampler)
  return config
