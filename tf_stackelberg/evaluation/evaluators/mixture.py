"""`mixture`: mode coverage, sample quality and reverse KL on a Gaussian mixture, with
the per-generator mode table (docs/design.md section 4).

Samples are assigned to modes in a compiled TensorFlow function, batch by batch, and
only the `[K, M]` counts come back to the host; `metrics_from_counts` finishes.
"""

import numpy as np
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation.evaluator import DEFAULT_BATCH, Evaluator, batch_seeds
from tf_stackelberg.evaluation.registry import EVALUATORS
from tf_stackelberg.metrics import mixture_metrics


class MixtureEvaluator(Evaluator):
  """Mixture metrics of `num_samples` model samples.

  Args:
    spec: the `MixtureSpec` (centres and std).
    num_generators: K.
    num_samples: samples per evaluation.
    batch_size: samples per compiled call.
    num_std: high-quality radius in units of std.
  """

  name = "mixture"
  scalar_names = ("modes", "high_quality", "reverse_kl")

  def __init__(self, spec, num_generators, num_samples=10000, batch_size=DEFAULT_BATCH,
               num_std=3.0):
    self.spec = spec
    self.num_generators = int(num_generators)
    self.num_samples = int(num_samples)
    self.batch_size = int(batch_size)
    self.num_std = float(num_std)
    self._centers = tf.constant(spec.centers, tf.float64)
    self._counts = tf.function(self._batch_counts, autograph=False)
    self._sample_counts = {}  # (sample_fn, batch size) -> compiled draw + counts

  def _batch_counts(self, x, k):
    """HQ counts `[K, M]` and sample counts `[K]` of one batch."""
    num_modes = self._centers.shape[0]
    x = tf.reshape(tf.cast(x, tf.float64), [tf.shape(x)[0], -1])
    # Explicit differences, in float64, as the NumPy reference: the expansion
    # |x|^2 - 2 x.c + |c|^2 loses the precision the 3-std threshold needs.
    diff = x[:, None, :] - self._centers[None]
    sq = tf.reduce_sum(diff * diff, axis=-1)
    finite = tf.reduce_all(tf.math.is_finite(x), axis=1)
    nearest = tf.argmin(tf.where(finite[:, None], sq, 0.0), axis=1, output_type=tf.int32)
    distance = tf.sqrt(tf.gather(sq, nearest, batch_dims=1))
    is_hq = finite & (distance < self.num_std * self.spec.std)
    k = tf.cast(k, tf.int32)
    cells = tf.boolean_mask(k * num_modes + nearest, is_hq)
    hq = tf.math.bincount(cells, minlength=self.num_generators * num_modes,
                          maxlength=self.num_generators * num_modes, dtype=tf.int64)
    counts = tf.math.bincount(k, minlength=self.num_generators,
                              maxlength=self.num_generators, dtype=tf.int64)
    return tf.reshape(hq, [self.num_generators, num_modes]), counts

  def _results(self, batch_counts):
    """The metrics from an iterable of per-batch `(hq [K, M], counts [K])`."""
    hq = np.zeros([self.num_generators, len(self.spec.centers)], np.int64)
    counts = np.zeros([self.num_generators], np.int64)
    for batch_hq, batch_count in batch_counts:
      hq += batch_hq.numpy()
      counts += batch_count.numpy()
    result = mixture_metrics.metrics_from_counts(hq, counts, self.spec.std,
                                                 self.num_std)
    yield from result.items()

  def _compiled_draw(self, sample_fn, n):
    """One compiled function that draws `n` samples and counts them."""
    key = (sample_fn, n)
    if key not in self._sample_counts:
      self._sample_counts[key] = tf.function(
          lambda seed: self._batch_counts(*sample_fn(n, seed)), autograph=False)
    return self._sample_counts[key]

  def evaluate(self, sample_fn, seed, step=0):
    return self._results(self._compiled_draw(sample_fn, n)(s) for n, s in
                         batch_seeds(seed, self.num_samples, self.batch_size))

  def evaluate_samples(self, x, k, step=0):
    size = self.batch_size
    return self._results(self._counts(x[i:i + size], k[i:i + size])
                         for i in range(0, len(x), size))

  def format(self, results):
    return mixture_metrics.format_metrics(results)

  def summary_fields(self, results):
    return [f"modes {results['modes']}/{results['num_modes_total']}",
            f"HQ {100 * results['high_quality']:.1f}%",
            f"KL {results['reverse_kl']:.4f}"]


@EVALUATORS.register("mixture")
def mixture(config, data_source, num_generators):
  """Needs a mixture dataset (`ring`, `grid`)."""
  if not hasattr(data_source, "spec"):
    raise ConfigError(f"--eval.evaluators: 'mixture' needs a Gaussian-mixture dataset, "
                      f"not --data.dataset={config.data.dataset}")
  return MixtureEvaluator(data_source.spec, num_generators, config.eval.num_samples)
