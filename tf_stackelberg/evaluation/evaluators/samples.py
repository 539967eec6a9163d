"""`samples`: a grid of model images, row k made by generator k (a single generator
fills every row), for TensorBoard and `samples.png`."""

import numpy as np
import tensorflow as tf

from tf_stackelberg import visualization
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation.evaluator import Evaluator
from tf_stackelberg.evaluation.registry import EVALUATORS

# Images per row; a single generator gets this many rows too.
_COLUMNS = 10
# Draws per shown image, so that every generator fills its row with uniform k.
_OVERSAMPLE = 4


def grid_rows(x, k, num_generators, columns=_COLUMNS):
  """`[rows, columns, H, W, C]`: row k holds generator k's first images (blank, i.e.
  -1, where it made fewer); with one generator, consecutive images fill the rows."""
  x, k = np.asarray(x), np.asarray(k)
  if num_generators == 1:
    rows = max(1, min(columns, len(x) // columns))
    shown = np.full((rows * columns,) + x.shape[1:], -1.0, np.float32)
    shown[:min(len(x), len(shown))] = x[:len(shown)]
    return shown.reshape((rows, columns) + x.shape[1:])
  out = np.full((num_generators, columns) + x.shape[1:], -1.0, np.float32)
  for g in range(num_generators):
    mine = x[k == g][:columns]
    out[g, :len(mine)] = mine
  return out


class SamplesEvaluator(Evaluator):
  """Yields `samples`: uint8 `[H', W', 3]` image grid (row k = generator k)."""

  name = "samples"
  image_names = ("samples",)

  def __init__(self, num_generators, columns=_COLUMNS, scale=2):
    self.num_generators = int(num_generators)
    self.columns = int(columns)
    self.scale = int(scale)

  def evaluate(self, sample_fn, seed, step=0):
    n = _OVERSAMPLE * self.columns * max(self.num_generators, self.columns)
    x, k = sample_fn(n, tf.cast(seed, tf.int64))
    return self.evaluate_samples(np.asarray(x), np.asarray(k), step)

  def evaluate_samples(self, x, k, step=0):
    rows = grid_rows(x, k, self.num_generators, self.columns)
    yield "samples", visualization.image_grid(
        rows, scale=self.scale, color_bar=4 if self.num_generators > 1 else 0)


@EVALUATORS.register("samples")
def samples(config, data_source, num_generators):  # pylint: disable=unused-argument
  """Needs image data `[H, W, C]` with 1 or 3 channels."""
  shape = tuple(data_source.element_shape)
  if len(shape) != 3 or shape[-1] not in (1, 3):
    raise ConfigError(f"--eval.evaluators: 'samples' needs images, not "
                      f"--data.dataset={config.data.dataset}")
  return SamplesEvaluator(num_generators, scale=2 if shape[0] <= 32 else 1)
