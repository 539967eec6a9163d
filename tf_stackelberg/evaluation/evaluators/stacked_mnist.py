"""`stacked_mnist`: modes covered (of 1000) and the KL to uniform over them, with the
MNIST classifier applied to each colour channel (docs/design.md sections 9.1 and 9.3).

A Stacked-MNIST image holds three MNIST digits as its channels; the classifier's
digit of channel 0, 1 and 2 gives the mode `100 a + 10 b + c` (Metz et al., 2017;
PacGAN's counting, Lin et al., 2018). Samples are drawn and classified in one compiled
call per batch; only the digit triples and generator indices come back to the host.
"""

import numpy as np
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation import classifiers
from tf_stackelberg.evaluation.evaluator import Evaluator, batch_seeds
from tf_stackelberg.evaluation.evaluators.classifier import check_input_shape, clip_images
from tf_stackelberg.evaluation.networks import FeatureNetwork
from tf_stackelberg.evaluation.registry import EVALUATORS
from tf_stackelberg.metrics import image_metrics


class StackedMnistEvaluator(Evaluator):
  """Stacked-MNIST modes of `num_samples` model samples.

  Args:
    network: a `FeatureNetwork` over one-channel digits `[H, W, 1]` with 10 classes.
    num_generators: K.
    num_samples: samples per evaluation.
    batch_size: samples per compiled call (each is three classifier inputs).
  """

  name = "stacked_mnist"
  scalar_names = ("modes", "mode_kl", "channel_dependence")

  def __init__(self, network: FeatureNetwork, num_generators, num_samples=10000,
               batch_size=None):
    if network.num_classes != 10:
      raise ConfigError(f"{network.name} has {network.num_classes} classes; "
                        "Stacked-MNIST needs a digit classifier (10)")
    self.network = network
    self.num_generators = int(num_generators)
    self.num_samples = int(num_samples)
    self.batch_size = int(batch_size or max(1, network.batch_size // 3))
    self._digits = tf.function(self._batch_digits, autograph=False)
    self._draws = {}

  def _batch_digits(self, x):
    """int64 `[N, 3]` predicted digit of each channel of images `[N, H, W, 3]`."""
    x = clip_images(x)
    channels = tf.transpose(x, [0, 3, 1, 2])                  # [N, 3, H, W]
    digits = tf.reshape(channels, [-1, x.shape[1], x.shape[2], 1])
    scores, _ = self.network(digits)
    return tf.reshape(tf.argmax(scores, axis=-1), [-1, 3])

  def _compiled_draw(self, sample_fn, n):
    key = (sample_fn, n)
    if key not in self._draws:
      def draw(seed):
        x, k = sample_fn(n, seed)
        return self._batch_digits(x), k
      self._draws[key] = tf.function(draw, autograph=False)
    return self._draws[key]

  def _results(self, digits, k):
    result = image_metrics.stacked_mnist_metrics(digits)
    modes = image_metrics.stacked_mnist_modes(digits)
    per_generator = [len(np.unique(modes[k == g])) for g in range(self.num_generators)]
    yield from {
        "num_samples": result["num_samples"],
        "modes": result["modes"],
        "num_modes_total": image_metrics.STACKED_MNIST_MODES,
        "mode_kl": result["mode_kl"],
        "channel_kl": result["channel_kl"],
        "channel_dependence": result["channel_dependence"],
        "mode_histogram": result["mode_histogram"],
        "per_generator_modes": per_generator,
        "network": {"name": self.network.name, **self.network.info},
    }.items()

  def evaluate(self, sample_fn, seed, step=0):
    parts = [self._compiled_draw(sample_fn, n)(s)
             for n, s in batch_seeds(seed, self.num_samples, self.batch_size)]
    return self._results(np.concatenate([p[0].numpy() for p in parts]),
                         np.concatenate([p[1].numpy() for p in parts]))

  def evaluate_samples(self, x, k, step=0):
    x = np.asarray(x)
    digits = [self._digits(x[i:i + self.batch_size]).numpy()
              for i in range(0, len(x), self.batch_size)]
    return self._results(np.concatenate(digits), np.asarray(k))

  def format(self, results):
    lines = [f"stacked_mnist ({results['network']['name']}): "
             f"{results['num_samples']} samples  modes: {results['modes']}/"
             f"{results['num_modes_total']}  KL to uniform: {results['mode_kl']:.4f}",
             "  = channel digits' KLs " + " + ".join(
                 f"{kl:.4f}" for kl in results["channel_kl"])
             + f" + channel dependence {results['channel_dependence']:.4f}"]
    if self.num_generators > 1:
      lines.append("distinct modes per generator: " + "  ".join(
          f"{g}:{m}" for g, m in enumerate(results["per_generator_modes"])))
    return "\n".join(lines)

  def summary_fields(self, results):
    return [f"modes {results['modes']}/{results['num_modes_total']}",
            f"KL {results['mode_kl']:.3f}"]


@EVALUATORS.register("stacked_mnist")
def stacked_mnist(config, data_source, num_generators):
  """Needs images with three channels and the cached MNIST classifier."""
  shape = tuple(getattr(data_source, "element_shape", ()))
  if len(shape) != 3 or shape[-1] != 3:
    raise ConfigError(f"--eval.evaluators: 'stacked_mnist' needs three-channel "
                      f"images, not --data.dataset={config.data.dataset}")
  network = classifiers.classifier_for(data_source, config)
  check_input_shape(network, shape[:2] + (1,), "--eval.classifier_dir")
  return StackedMnistEvaluator(network, num_generators, config.eval.num_samples)
