"""`scatter`: a scatter plot of model samples over real data, each generator in its own
colour (for 2-D data)."""

import numpy as np
import tensorflow as tf

from tf_stackelberg import visualization
from tf_stackelberg.common import salts
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation.evaluator import Evaluator
from tf_stackelberg.evaluation.registry import EVALUATORS

# Points drawn in one plot: real (grey backdrop) and generated.
_PLOT_REAL, _PLOT_FAKE = 2000, 2500


class ScatterEvaluator(Evaluator):
  """Yields `samples`: a uint8 scatter image of model samples over real points.

  Args:
    real: `[N, 2]` real points of the backdrop.
    num_generators: K.
    model_name: the first part of the title ("8 generators").
    extent: (xmin, xmax, ymin, ymax) of the plot, fixed for the run.
    num_samples: generated points drawn.
  """

  name = "scatter"
  image_names = ("samples",)

  def __init__(self, real, num_generators, model_name, extent, num_samples=_PLOT_FAKE):
    self.real = np.asarray(real)
    self.num_generators = num_generators
    self.model_name = model_name
    self.extent = extent
    self.num_samples = num_samples

  def evaluate(self, sample_fn, seed, step=0):
    x, k = sample_fn(self.num_samples, tf.cast(seed, tf.int64))
    return self.evaluate_samples(np.asarray(x), np.asarray(k), step)

  def evaluate_samples(self, x, k, step=0, title=None):
    n = self.num_samples
    image = visualization.render_scatter(
        self.real, np.asarray(x)[:n], np.asarray(k)[:n], self.num_generators,
        extent=self.extent, title=title or f"{self.model_name}, step {step}")
    yield "samples", image


def model_name(config, num_generators):
  """A short description of the generator side for titles ("8 generators (mlp)")."""
  plural = "s" if num_generators > 1 else ""
  return f"{num_generators} generator{plural} ({config.model.generator})"


@EVALUATORS.register("scatter")
def scatter(config, data_source, num_generators):
  """Needs 2-D data; the window covers the mixture's modes when known."""
  if tuple(data_source.element_shape) != (2,):
    raise ConfigError(f"--eval.evaluators: 'scatter' needs 2-D data, not "
                      f"--data.dataset={config.data.dataset}")
  key = tf.constant([config.seed, salts.SCATTER_BACKDROP], tf.int64)
  real = data_source.held_out(_PLOT_REAL, key).numpy()
  spec = getattr(data_source, "spec", None)
  if spec is not None:
    span = 1.25 * (float(np.abs(spec.centers).max()) + 6.0 * spec.std)
  else:
    span = 1.25 * float(np.abs(real).max())
  return ScatterEvaluator(real, num_generators, model_name(config, num_generators),
                          (-span, span, -span, span))
