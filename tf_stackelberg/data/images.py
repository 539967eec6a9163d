"""Image datasets held in memory as uint8, batched statelessly in (seed, step).

A run resumed at step s reads exactly the batches an uninterrupted run would have
read: the order of epoch e is a stateless shuffle of (seed, e), and the batch of step
s is a gather from it (the last incomplete batch of an epoch is dropped). Pixels are
scaled to [-1, 1] (the generators end in tanh).

Where the gather runs depends on the size of the training images (docs/design.md
section 11.1). Up to `HOST_GATHER_BYTES` they are one tensor that the input pipeline
captures, so the whole pipeline is a TensorFlow graph. Larger arrays (ImageNet32,
3.9 GB; CelebA 64x64, 2 GB) stay a NumPy array that the pipeline indexes through
`tf.numpy_function`: a captured tensor is copied into every pipeline made from it
(measured with TF 2.21 on a 2.2 GB array: a peak of 9.2 GB and 8-9 s per
`batches` call on two busy cores, against 2.8 GB and no delay for the host
gather).
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_stackelberg.common import salts
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.data.source import DataSource, check_shard, shard_rows

#: Training images larger than this are gathered on the host (see the module text).
HOST_GATHER_BYTES = 1 << 30


def to_unit_range(images):
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images):
  """float [-1, 1] -> uint8 [0, 255] (clipped), as NumPy."""
  images = np.asarray(images, np.float32)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def epoch_batches(num_examples, batch_size, seed, start_step=0, num_steps=None):
  """A dataset of int64 index batches `[batch_size]`, one per step from `start_step`:
  each epoch is a stateless permutation of (seed, epoch)."""
  if not 0 < batch_size <= num_examples:
    raise ValueError(f"a batch of {batch_size} does not fit in an epoch of "
                     f"{num_examples} examples")
  batches_per_epoch = num_examples // batch_size
  end = start_step + num_steps if num_steps is not None else np.iinfo(np.int64).max

  def indices(step):
    epoch, index = step // batches_per_epoch, step % batches_per_epoch
    order = tf.random.experimental.stateless_shuffle(
        tf.range(num_examples, dtype=tf.int64),
        tf.stack([tf.constant(seed, tf.int64) * 4 + salts.DATA_SHUFFLE, epoch]))
    return order[index * batch_size:(index + 1) * batch_size]

  return tf.data.Dataset.range(start_step, end).map(indices)


class ImageData(DataSource):
  """A labelled image dataset for training and evaluation.

  Args:
    name: the dataset's name ('mnist'); evaluation classifiers are cached by it.
    train: (images uint8 `[N, H, W, C]`, labels int `[N]`) of the training split;
      labels None for unlabelled data (they read as -1).
    test: the same for the held-out split (None: the training split serves).
    class_names: names of the labels (their number is `num_classes`).
    evaluators: names of the evaluators that suit the data.
    description: a label for reports, e.g. 'CIFAR-10 (JPEG q75)'.
    host_gather_bytes: training images of more bytes are gathered on the host
      rather than captured by the pipeline as a tensor (module text).

  Attributes:
    element_shape: `(H, W, C)`.
    num_classes: number of label classes.
  """

  def __init__(self, name: str, train: Tuple[np.ndarray, np.ndarray],
               test: Optional[Tuple[np.ndarray, np.ndarray]] = None,
               class_names: Sequence[str] = (), evaluators=("classifier", "samples"),
               description: str = "", host_gather_bytes: int = HOST_GATHER_BYTES):
    self.name = name
    self.description = description or name
    train = _with_labels(train)
    self._splits = {"train": train,
                    "test": _with_labels(test) if test is not None else train}
    self.element_shape = tuple(train[0].shape[1:])
    self.class_names = tuple(class_names)
    self.num_classes = len(self.class_names)
    self.evaluators = tuple(evaluators)
    self.host_gather_bytes = host_gather_bytes
    self._gather = None  # made on first use

  def num_examples(self, split="train"):
    return len(self._splits[split][0])

  @property
  def gathers_on_host(self):
    """Whether `batches` indexes the training images on the host (module text)."""
    return self._splits["train"][0].nbytes > self.host_gather_bytes

  def _gather_fn(self):
    """`int64 indices [B] -> uint8 images [B, H, W, C]`, usable in a tf.data map."""
    if self._gather is None:
      images = self._splits["train"][0]
      if self.gathers_on_host:
        shape = (None,) + tuple(images.shape[1:])

        def gather(indices):
          batch = tf.numpy_function(lambda i: images[i], [indices], tf.uint8,
                                    stateful=False)
          batch.set_shape(shape)
          return batch
      else:
        # Made here, outside any tf.function or strategy scope: an eager tensor.
        with tf.init_scope():
          constant = tf.constant(images)

        def gather(indices):
          return tf.gather(constant, indices)
      self._gather = gather
    return self._gather

  def check_batch_size(self, batch_size):
    """Refuses a batch larger than the training split: epochs are whole batches."""
    count = self.num_examples("train")
    if batch_size > count:
      raise ConfigError(f"--game.batch_size={batch_size} is larger than the "
                        f"{count:,} training examples of {self.description} "
                        f"(--data.dataset={self.name}); use --game.batch_size="
                        f"{count} or less")

  def batches(self, batch_size, seed, start_step=0, num_steps=None, shard=None):
    check_shard(batch_size, shard)
    self.check_batch_size(batch_size)
    gather = self._gather_fn()
    index_batches = epoch_batches(self.num_examples("train"), batch_size, seed,
                                  start_step, num_steps)
    # The share is cut from the indices, so a pipeline gathers only its own images.
    index_batches = index_batches.map(lambda i: shard_rows(i, batch_size, shard))
    return index_batches.map(lambda i: to_unit_range(gather(i)),
                             num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=True).prefetch(tf.data.AUTOTUNE)

  def examples(self, split="test", num_examples=None, seed=None):
    """(images float32 [-1, 1] `[n, H, W, C]`, labels `[n]`) as NumPy: the whole
    split, or `num_examples` of it drawn without replacement with a stateless
    `seed` `[2]`."""
    images, labels = self._splits[split]
    if num_examples is not None and num_examples < len(images):
      order = tf.random.experimental.stateless_shuffle(
          tf.range(len(images), dtype=tf.int64),
          tf.cast(seed if seed is not None else [0, salts.IMAGE_HELD_OUT], tf.int64))
      chosen = np.sort(order[:num_examples].numpy())
      images, labels = images[chosen], labels[chosen]
    return uint8_to_unit_range(images), np.asarray(labels)

  def examples_uint8(self, split="test"):
    """(images uint8 `[N, H, W, C]`, labels int64 `[N]`, -1 if unlabelled) of a
    whole split, as held (no copy)."""
    return self._splits[split]

  def held_out(self, num_examples, seed):
    images, _ = self.examples("test", num_examples, seed)
    return tf.constant(images)


def _with_labels(split):
  """(images, labels) with labels int64, -1 where the data has none."""
  images, labels = split
  if labels is None:
    return images, np.full(len(images), -1, np.int64)
  if len(labels) != len(images):
    raise ValueError(f"{len(images)} images but {len(labels)} labels")
  return images, np.asarray(labels, np.int64)


def uint8_to_unit_range(images):
  """uint8 images as float32 in [-1, 1], in NumPy."""
  return np.asarray(images, np.float32) / 127.5 - 1.0
