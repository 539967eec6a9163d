"""The held-out split of a run's training data (`--sampling.held_out_fraction`,
docs/design.md section 14.1).

A seeded, reproducible share of the training images that discriminator preparation
never trains on; its early stopping, the calibration of the discriminator logit and
the energy health report use it. The GAN's own training did see these images (a
trained run cannot unsee them); what the split guarantees is that the fine-tuned
discriminator was not fitted to them. The test split stays the evaluators'
reference (FID, KID, ...), so nothing that sampling uses is also what scores it.

Data without a finite training split of their own hold out fresh examples: a
Gaussian mixture draws new points (held out by construction: the training set or
stream never holds them with probability one), Stacked-MNIST its fixed test triples.
"""

import numpy as np
import tensorflow as tf

from tf_stackelberg.common import salts
from tf_stackelberg.data.datasets.stacked_mnist import StackedMnist
from tf_stackelberg.data.images import ImageData, to_unit_range

#: Held-out examples read at most (calibration, early stopping and the report).
MAX_HELD_OUT = 5000


class HeldOutSplit:
  """The held-out examples of a run and the training examples that remain.

  Args:
    data: the run's `DataSource`.
    fraction: the held-out share of a finite training split, in (0, 0.5].
    seed: the run's seed.

  Attributes:
    description: what is held out, for reports ('6,000 of the 60,000 training
      images (10%)').
    splits_training: whether the held-out examples are cut from the training split
      (otherwise they are fresh draws).
  """

  def __init__(self, data, fraction, seed):
    self.data = data
    self.fraction = float(fraction)
    self.seed = int(seed)
    self.splits_training = isinstance(data, ImageData) and not isinstance(
        data, StackedMnist)
    if self.splits_training:
      n = data.num_examples("train")
      count = min(n - 1, max(1, int(round(self.fraction * n))))
      order = tf.random.experimental.stateless_shuffle(
          tf.range(n, dtype=tf.int64),
          tf.constant([self.seed, salts.HELD_OUT_SPLIT], tf.int64)).numpy()
      self.held_out_indices = order[:count]  # in the shuffled order: a prefix is random
      self.training_indices = np.sort(order[count:])
      self.description = (f"{count:,} of the {n:,} training images "
                          f"({100 * count / n:.3g}%)")
    else:
      self.held_out_indices = self.training_indices = None
      self.description = ("fresh draws of the mixture" if not isinstance(data, ImageData)
                          else "the fixed test triples (no training split to cut)")

  def num_held_out(self, limit=MAX_HELD_OUT):
    """Held-out examples `real` returns (at most `limit`)."""
    if self.splits_training:
      return min(limit, len(self.held_out_indices))
    return limit

  def real(self, limit=MAX_HELD_OUT):
    """Held-out real examples, float32 `[n, ...]` in the model's range, as a tensor:
    the same ones for the same seed."""
    if self.splits_training:
      images, _ = self.data.examples_uint8("train")
      chosen = np.sort(self.held_out_indices[:self.num_held_out(limit)])
      return to_unit_range(images[chosen])
    return self.data.held_out(limit, tf.constant([self.seed, salts.CALIBRATION],
                                                 tf.int64))

  def test(self, limit=MAX_HELD_OUT):
    """Test-split examples (the evaluators' reference), or None for data without
    one."""
    if not self.splits_training:
      return None
    count = min(limit, self.data.num_examples("test"))
    images, _ = self.data.examples("test", count)
    return tf.constant(images)

  def training_batches(self, batch_size, seed, num_steps):
    """`num_steps` batches of training examples without the held-out ones: epochs
    of stateless shuffles of `(seed, epoch)` over the rest of the split (for data
    without a split, the run's own training batches)."""
    if not self.splits_training:
      for batch in self.data.batches(batch_size, seed, num_steps=num_steps):
        yield batch[0] if isinstance(batch, (tuple, list)) else batch
      return
    images, _ = self.data.examples_uint8("train")
    indices = self.training_indices
    per_epoch = len(indices) // batch_size
    if per_epoch < 1:
      raise ValueError(f"a batch of {batch_size} does not fit in the "
                       f"{len(indices)} training examples outside the held-out split")
    epoch, order = -1, None
    for step in range(num_steps):
      if step // per_epoch != epoch:
        epoch = step // per_epoch
        order = tf.random.experimental.stateless_shuffle(
            tf.constant(indices), tf.constant([seed, epoch], tf.int64)).numpy()
      start = (step % per_epoch) * batch_size
      yield to_unit_range(images[np.sort(order[start:start + batch_size])])
