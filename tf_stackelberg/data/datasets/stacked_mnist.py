"""`--data.dataset=stacked_mnist`: three MNIST digits as the R, G, B channels,
28x28x3, 1000 modes (Metz et al., 2017; PacGAN's setting: docs/design.md section
11.1)."""

import numpy as np
import tensorflow as tf

from tf_stackelberg.common import salts
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.data.datasets.mnist import load_digits
from tf_stackelberg.data.images import ImageData, epoch_batches, to_unit_range
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.data.source import check_shard, shard_rows

NUM_MODES = 1000
#: "000" .. "999": the digits of the R, G and B channels.
CLASS_NAMES = tuple(f"{m:03d}" for m in range(NUM_MODES))
#: Triples in the test split (as many as MNIST has test digits).
TEST_SIZE = 10000
_TEST_SEED = (20181108, 3)  # the test triples are the same for every run


def draw_triples(num_digits, num_triples, seed):
  """int64 `[num_triples, 3]` indices in [0, num_digits), uniform and independent,
  drawn statelessly with `seed` `[2]`."""
  return tf.random.stateless_uniform([num_triples, 3], tf.cast(seed, tf.int64),
                                     minval=0, maxval=num_digits, dtype=tf.int64)


def triple_labels(digit_labels, triples):
  """Labels `100 a + 10 b + c` of triples of digits labelled a (R), b (G), c (B)."""
  digits = np.asarray(digit_labels, np.int64)[np.asarray(triples)]
  return digits[..., 0] * 100 + digits[..., 1] * 10 + digits[..., 2]


def stack(digit_images, triples):
  """uint8 `[n, 28, 28, 3]`: channel j of image i is digit `triples[i, j]` (NumPy or
  TensorFlow, as given)."""
  if isinstance(triples, tf.Tensor):
    gathered = tf.gather(digit_images, triples)  # [n, 3, 28, 28, 1]
    return tf.transpose(gathered[..., 0], [0, 2, 3, 1])
  return np.transpose(np.asarray(digit_images)[np.asarray(triples), ..., 0],
                      (0, 2, 3, 1))


class StackedMnist(ImageData):
  """Stacked MNIST over the digits of an MNIST `ImageData`.

  Triples of digit indices, not pixels, are held: a batch gathers its three digits
  per image from the MNIST arrays (47 MB) on the fly. The fixed training set of
  128,000 triples is 3 MB of indices instead of 301 MB of stacked images, and the
  same gather serves the streaming mode (`size=0`), whose triples are drawn anew
  for every step.

  Every batch is a pure function of (seed, step): the fixed set is drawn from the
  run seed alone, its epochs are stateless shuffles of (seed, epoch) like
  `ImageData`'s; streamed triples are drawn from (seed, step).

  Args:
    digits: the MNIST `ImageData` (train and test splits).
    size: triples in the fixed training set; 0 streams fresh triples.
    test_size: triples in the test split, drawn once from the MNIST test digits with
      a constant seed (the same for every run).

  Attributes:
    digits: the MNIST `ImageData` (e.g. for the per-channel classifier).
  """

  def __init__(self, digits, size=128000, test_size=TEST_SIZE):
    # The splits ImageData holds are the MNIST digits; every method that reads them
    # is overridden to stack triples.
    super().__init__("stacked_mnist", digits.examples_uint8("train"),
                     digits.examples_uint8("test"), CLASS_NAMES,
                     evaluators=("stacked_mnist", "samples"),
                     description="Stacked MNIST")
    self.digits = digits
    self.size = int(size)
    self._digit_splits = self._splits
    self.element_shape = (28, 28, 3)
    self._test_triples = draw_triples(len(self._digit_splits["test"][0]), test_size,
                                      _TEST_SEED).numpy()
    self._train_digits = None  # a tensor, made on first use

  def num_examples(self, split="train"):
    """Triples in `split`: the fixed set, or for a streaming training split the
    number of MNIST training digits (the length of one epoch)."""
    if split == "test":
      return len(self._test_triples)
    return self.size or len(self._digit_splits["train"][0])

  def training_triples(self, seed):
    """int64 `[size, 3]`: the fixed training set of the run seed `seed` (an int):
    indices of its R, G and B digits in the MNIST training split."""
    if not self.size:
      raise ValueError("stacked_mnist with size=0 has no fixed training set")
    return draw_triples(len(self._digit_splits["train"][0]), self.size,
                        [seed, salts.STACKED_MNIST_FIXED])

  def training_labels(self, seed):
    """int64 `[size]`: the labels (modes) of the fixed training set of `seed`."""
    return triple_labels(self._digit_splits["train"][1],
                         self.training_triples(seed).numpy())

  def check_batch_size(self, batch_size):
    """A fixed set must hold a batch; streamed triples (size 0) fit any batch."""
    if self.size and batch_size > self.size:
      raise ConfigError(f"--data.size={self.size} is smaller than "
                        f"--game.batch_size={batch_size}; use a larger --data.size, "
                        "0 to draw fresh examples every step, or a smaller "
                        "--game.batch_size")

  def batches(self, batch_size, seed, start_step=0, num_steps=None, shard=None):
    check_shard(batch_size, shard)
    self.check_batch_size(batch_size)
    if self._train_digits is None:
      with tf.init_scope():  # an eager tensor, outside any tf.function or strategy
        self._train_digits = tf.constant(self._digit_splits["train"][0])
    digits = self._train_digits
    num_digits = len(self._digit_splits["train"][0])
    if self.size:
      table = self.training_triples(seed)
      index_batches = epoch_batches(self.size, batch_size, seed, start_step,
                                    num_steps)
      triple_batches = index_batches.map(lambda i: tf.gather(table, i))
    else:
      end = (start_step + num_steps if num_steps is not None
             else np.iinfo(np.int64).max)
      key = tf.constant([seed, salts.STACKED_MNIST_STREAM], tf.int64)
      triple_batches = tf.data.Dataset.range(start_step, end).map(
          lambda step: draw_triples(
              num_digits, batch_size,
              tf.random.experimental.stateless_fold_in(key, step)))
    triple_batches = triple_batches.map(lambda t: shard_rows(t, batch_size, shard))
    return triple_batches.map(lambda t: to_unit_range(stack(digits, t)),
                              num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True).prefetch(tf.data.AUTOTUNE)

  def triples(self, split="test", num_examples=None, seed=None):
    """int64 `[n, 3]` digit indices of `examples(split, num_examples, seed)`."""
    if split == "test":
      triples = self._test_triples
      if num_examples is not None and num_examples < len(triples):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(len(triples), dtype=tf.int64),
            tf.cast(seed if seed is not None else [0, salts.STACKED_MNIST_EXAMPLES],
                    tf.int64))
        triples = triples[np.sort(order[:num_examples].numpy())]
      return triples
    if num_examples is None:
      num_examples = self.num_examples("train")
    default = [0, salts.STACKED_MNIST_EXAMPLES]
    return draw_triples(len(self._digit_splits["train"][0]), num_examples,
                        seed if seed is not None else default).numpy()

  def examples(self, split="test", num_examples=None, seed=None):
    """(images float32 [-1, 1] `[n, 28, 28, 3]`, labels `[n]`) as NumPy.

    'test': the fixed test triples, all or `num_examples` of them drawn without
    replacement with a stateless `seed` `[2]`. 'train': `num_examples` (default
    `num_examples('train')`) triples of training digits drawn with `seed`. These
    follow the training distribution but are not the run's fixed set, which depends
    on the run seed (`training_triples`).
    """
    images, labels = self._digit_splits[split]
    triples = self.triples(split, num_examples, seed)
    stacked = stack(images, triples)
    return (np.asarray(stacked, np.float32) / 127.5 - 1.0,
            triple_labels(labels, triples))


@DATASETS.register("stacked_mnist")
def stacked_mnist(config):
  """Stacked MNIST from the MNIST of `--data.source`, with a fixed training set of
  `--data.size` triples (0: fresh triples every step)."""
  return StackedMnist(load_digits(config), size=config.size)
