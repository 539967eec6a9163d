"""Image datasets held in memory as uint8, batched statelessly in (seed, step).

A run resumed at step s reads exactly the batches an uninterrupted run would have
read: the order of epoch e is a stateless shuffle of (seed, e), and the batch of step
s is a gather from it (the last incomplete batch of an epoch is dropped). Pixels are
scaled to [-1, 1] (the generators end in tanh).
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_stackelberg.data.source import DataSource

_SHUFFLE_SALT = 2
_HELD_OUT_SALT = 5


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
  batches_per_epoch = num_examples // batch_size
  end = start_step + num_steps if num_steps is not None else np.iinfo(np.int64).max

  def indices(step):
    epoch, index = step // batches_per_epoch, step % batches_per_epoch
    order = tf.random.experimental.stateless_shuffle(
        tf.range(num_examples, dtype=tf.int64),
        tf.stack([tf.constant(seed, tf.int64) * 4 + _SHUFFLE_SALT, epoch]))
    return order[index * batch_size:(index + 1) * batch_size]

  return tf.data.Dataset.range(start_step, end).map(indices)


class ImageData(DataSource):
  """A labelled image dataset for training and evaluation.

  Args:
    name: the dataset's name ('mnist'); evaluation classifiers are cached by it.
    train: (images uint8 `[N, H, W, C]`, labels int `[N]`) of the training split.
    test: the same for the held-out split (None: the training split serves).
    class_names: names of the labels (their number is `num_classes`).
    evaluators: names of the evaluators that suit the data.
    description: a label for reports, e.g. 'CIFAR-10 (JPEG q75)'.

  Attributes:
    element_shape: `(H, W, C)`.
    num_classes: number of label classes.
  """

  def __init__(self, name: str, train: Tuple[np.ndarray, np.ndarray],
               test: Optional[Tuple[np.ndarray, np.ndarray]] = None,
               class_names: Sequence[str] = (), evaluators=("classifier", "samples"),
               description: str = ""):
    self.name = name
    self.description = description or name
    self._splits = {"train": train, "test": test if test is not None else train}
    self.element_shape = tuple(train[0].shape[1:])
    self.class_names = tuple(class_names)
    self.num_classes = len(self.class_names)
    self.evaluators = tuple(evaluators)
    self._train_images = None  # a tensor, made on first use

  def num_examples(self, split="train"):
    return len(self._splits[split][0])

  def batches(self, batch_size, seed, start_step=0, num_steps=None):
    if self._train_images is None:
      self._train_images = tf.constant(self._splits["train"][0])
    images = self._train_images
    index_batches = epoch_batches(self.num_examples("train"), batch_size, seed,
                                  start_step, num_steps)
    return index_batches.map(lambda i: to_unit_range(tf.gather(images, i)),
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
          tf.cast(seed if seed is not None else [0, _HELD_OUT_SALT], tf.int64))
      chosen = np.sort(order[:num_examples].numpy())
      images, labels = images[chosen], labels[chosen]
    return uint8_to_unit_range(images), np.asarray(labels)

  def held_out(self, num_examples, seed):
    images, _ = self.examples("test", num_examples, seed)
    return tf.constant(images)


def uint8_to_unit_range(images):
  """uint8 images as float32 in [-1, 1], in NumPy."""
  return np.asarray(images, np.float32) / 127.5 - 1.0
