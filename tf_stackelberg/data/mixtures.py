"""Gaussian mixtures (ring and grid) as deterministic tf.data pipelines.

Every batch is a pure function of (seed, step): a run resumed at step s reads exactly
the batches an uninterrupted run would have read, with no iterator state to save.
"""

import collections
import math

import numpy as np
import tensorflow as tf

from tf_stackelberg.common import salts
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.data.source import DataSource, check_shard, shard_rows

MixtureSpec = collections.namedtuple("MixtureSpec", ["name", "centers", "std"])
MixtureSpec.__doc__ = """A mixture of equal-weight isotropic Gaussians.

Attributes:
  name: 'ring' or 'grid'.
  centers: float32 numpy array [num_modes, dim].
  std: standard deviation of every mode.
"""


def ring(num_modes=8, radius=1.0, std=0.01):
  """Modes at angles 2*pi*k/num_modes on a circle (x = r sin, y = r cos, as the seed)."""
  angles = 2.0 * math.pi * np.arange(num_modes) / num_modes
  centers = radius * np.stack([np.sin(angles), np.cos(angles)], axis=1)
  return MixtureSpec("ring", centers.astype(np.float32), float(std))


def grid(size=5, spacing=2.0, std=0.05):
  """size x size modes centred on the origin ({-4,-2,0,2,4}^2 for 5 and 2.0)."""
  coords = (np.arange(size) - (size - 1) / 2.0) * spacing
  xx, yy = np.meshgrid(coords, coords, indexing="ij")
  centers = np.stack([xx.ravel(), yy.ravel()], axis=1)
  return MixtureSpec("grid", centers.astype(np.float32), float(std))


def draw_points(spec, num_points, seed):
  """Draws `num_points` points from the mixture with a stateless `seed` (shape [2]).

  Returns a tuple (points float32 [num_points, dim], mode index int32 [num_points]).
  """
  mode_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  centers = tf.constant(spec.centers)
  modes = tf.random.stateless_uniform([num_points], mode_seed, minval=0,
                                      maxval=len(spec.centers), dtype=tf.int32)
  noise = tf.random.stateless_normal([num_points, spec.centers.shape[1]], noise_seed,
                                    stddev=spec.std)
  return tf.gather(centers, modes) + noise, modes


def fixed_set(spec, size, seed):
  """The fixed training set of a run (drawn once, as in the reference scripts)."""
  points, _ = draw_points(spec, size,
                          tf.constant([seed, salts.MIXTURE_FIXED_SET], tf.int64))
  return points


def make_dataset(spec, batch_size, seed, dataset_size=8000, shuffle=False,
                 start_step=0, num_steps=None):
  """Batches of real points, one per training step, starting at `start_step`.

  Args:
    spec: the `MixtureSpec`.
    batch_size: global batch size.
    seed: integer seed of the run.
    dataset_size: size of the fixed set, iterated epoch after epoch (the last
      incomplete batch of an epoch is dropped); 0 draws fresh points every step.
    shuffle: reshuffle the fixed set every epoch (stateless, so resumable).
    start_step: first step to produce (the restored step when resuming).
    num_steps: number of batches; None repeats forever.

  Returns:
    A `tf.data.Dataset` of float32 [batch_size, dim] tensors.
  """
  end = start_step + num_steps if num_steps is not None else np.iinfo(np.int64).max
  steps = tf.data.Dataset.range(start_step, end)
  if not dataset_size:
    def stream_batch(step):
      points, _ = draw_points(spec, batch_size, tf.stack(
          [tf.constant(seed, tf.int64) * 4 + salts.MIXTURE_STREAM, step]))
      return points
    return steps.map(stream_batch).prefetch(tf.data.AUTOTUNE)

  points = fixed_set(spec, dataset_size, seed)
  batches_per_epoch = dataset_size // batch_size

  def fixed_batch(step):
    epoch, index = step // batches_per_epoch, step % batches_per_epoch
    order = tf.range(dataset_size, dtype=tf.int64)
    if shuffle:
      order = tf.random.experimental.stateless_shuffle(
          order, tf.stack([tf.constant(seed, tf.int64) * 4 + salts.DATA_SHUFFLE, epoch]))
    return tf.gather(points, order[index * batch_size:(index + 1) * batch_size])

  return steps.map(fixed_batch).prefetch(tf.data.AUTOTUNE)


class MixtureData(DataSource):
  """A mixture as training data: a fixed set (or a fresh stream) of its points.

  Args:
    spec: the `MixtureSpec`.
    size: size of the fixed training set; 0 draws fresh points every step.
    shuffle: reshuffle the fixed set every epoch.
  """

  evaluators = ("mixture", "scatter")

  def __init__(self, spec, size=8000, shuffle=False):
    self.spec = spec
    self.size = size
    self.shuffle = shuffle
    self.element_shape = tuple(spec.centers.shape[1:])

  def check_batch_size(self, batch_size):
    """A fixed set must hold a batch; a stream (size 0) fits any batch."""
    if self.size and batch_size > self.size:
      raise ConfigError(f"--data.size={self.size} is smaller than "
                        f"--game.batch_size={batch_size}; use a larger --data.size, "
                        "0 to draw fresh examples every step, or a smaller "
                        "--game.batch_size")

  def batches(self, batch_size, seed, start_step=0, num_steps=None, shard=None):
    check_shard(batch_size, shard)
    self.check_batch_size(batch_size)
    return make_dataset(self.spec, batch_size, seed, self.size, self.shuffle,
                        start_step=start_step, num_steps=num_steps).map(
                            lambda b: shard_rows(b, batch_size, shard))

  def held_out(self, num_examples, seed):
    points, _ = draw_points(self.spec, num_examples, tf.cast(seed, tf.int64))
    return points
