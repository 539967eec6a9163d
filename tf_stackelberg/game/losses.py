"""Losses of the Stackelberg game (DESIGN section 1) as plain functions.

Shapes: `real_logits [B]`, `fake_logits [K, B]` (generator k's fakes in row k),
`fake_class_logits [K, B, K]`. Every loss is a sum over this replica's examples divided
by `global_batch_size`, so that summing gradients over replicas (what a
`tf.distribute` strategy does) gives the gradient of the mean over the global batch.
With one replica and `global_batch_size=B` each BCE is the usual batch mean.
"""

import collections

import tensorflow as tf

GANLosses = collections.namedtuple(
    "GANLosses", ["total", "per_generator", "real", "fake"])
GANLosses.__doc__ = """Loss terms of one player.

Attributes:
  total: scalar the player minimises.
  per_generator: [K] each game's share (generator losses, or D's fake terms).
  real: scalar D real term BCE(D(x), 1) (zero for the generators).
  fake: scalar sum over k of the fake terms.
"""


def _batch_mean(per_example, global_batch_size):
  """Sum over the last axis / global batch: a distribution-correct batch mean."""
  return tf.reduce_sum(per_example, axis=-1) / tf.cast(global_batch_size,
                                                       per_example.dtype)


def binary_cross_entropy(logits, label, global_batch_size):
  """Batch-mean BCE of `logits [..., B]` against a constant `label` (0 or 1)."""
  labels = tf.fill(tf.shape(logits), tf.cast(label, logits.dtype))
  per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
  return _batch_mean(per_example, global_batch_size)


def generator_loss(fake_logits, global_batch_size):
  """Non-saturating loss summed over the K games: sum_k BCE(D(G_k(z)), 1)."""
  per_generator = binary_cross_entropy(fake_logits, 1.0, global_batch_size)
  total = tf.reduce_sum(per_generator)
  return GANLosses(total, per_generator, tf.zeros_like(total), total)


def discriminator_loss(real_logits, fake_logits, global_batch_size):
  """sum_k 1/2 [BCE(D(x), 1) + BCE(D(G_k(z)), 0)]: the real term counts K times."""
  num_games = tf.cast(tf.shape(fake_logits)[0], real_logits.dtype)
  real = binary_cross_entropy(real_logits, 1.0, global_batch_size)
  per_generator = 0.5 * (real + binary_cross_entropy(fake_logits, 0.0,
                                                     global_batch_size))
  fake = tf.reduce_sum(per_generator) - 0.5 * num_games * real
  return GANLosses(tf.reduce_sum(per_generator), per_generator, real, fake)


def classifier_loss(fake_class_logits, global_batch_size):
  """sum_k CE(C(G_k(z)), k): the head must tell which generator made each fake.

  Both players minimise beta times this: D learns to tell generators apart and the
  generators learn to be told apart, which pushes them onto different modes.
  """
  num_games, batch = tf.shape(fake_class_logits)[0], tf.shape(fake_class_logits)[1]
  labels = tf.broadcast_to(tf.range(num_games)[:, None], [num_games, batch])
  per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=fake_class_logits)
  return tf.reduce_sum(_batch_mean(per_example, global_batch_size))
