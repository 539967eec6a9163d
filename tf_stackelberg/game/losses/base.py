"""Shapes and helpers shared by the loss families (docs/design.md section 1).

Shapes: `real_logits [B]`, `fake_logits [K, B]` (generator k's fakes in row k). Every
loss is a sum over this replica's examples divided by `global_batch_size`, so that
summing gradients over replicas (what a `tf.distribute` strategy does) gives the
gradient of the mean over the global batch. With one replica and
`global_batch_size=B` each term is the usual batch mean.
"""

import collections

import tensorflow as tf

GANLosses = collections.namedtuple(
    "GANLosses", ["total", "per_generator", "real", "fake"])
GANLosses.__doc__ = """Loss terms of one player.

Attributes:
  total: scalar the player minimises (the sum over the K games).
  per_generator: [K] each game's share (generator losses, or D's per-game terms).
  real: scalar D's term on real data, counted once (zero for the generators).
  fake: scalar D's terms on the fakes, summed over k (the generators' total).
"""

LossFamily = collections.namedtuple(
    "LossFamily", ["generator_loss", "discriminator_loss", "penalty"])
LossFamily.__doc__ = """One loss family: what each player minimises in each game.

Attributes:
  generator_loss: `(fake_logits [K, B], global_batch_size) -> GANLosses`.
  discriminator_loss: `(real_logits [B], fake_logits [K, B], global_batch_size) ->
    GANLosses`.
  penalty: None, or `(critic_fn, real [B, ...], fakes [K, B, ...], seed [2],
    global_batch_size) -> scalar`, a weighted regulariser of the discriminator summed
    over the K games (e.g. the gradient penalty of WGAN-GP); `critic_fn(x)` returns
    the logits `[N]`.
"""


def batch_mean(per_example, global_batch_size):
  """Sum over the last axis / global batch: a distribution-correct batch mean."""
  return tf.reduce_sum(per_example, axis=-1) / tf.cast(global_batch_size,
                                                       per_example.dtype)


def binary_cross_entropy(logits, label, global_batch_size):
  """Batch-mean BCE of `logits [..., B]` against a constant `label` (0 or 1)."""
  labels = tf.fill(tf.shape(logits), tf.cast(label, logits.dtype))
  per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
  return batch_mean(per_example, global_batch_size)


def generator_losses(per_generator):
  """`GANLosses` of the generators from their per-game losses `[K]`."""
  total = tf.reduce_sum(per_generator)
  return GANLosses(total, per_generator, tf.zeros_like(total), total)


def discriminator_losses(real, fake_per_generator):
  """`GANLosses` of D from its real term (one game's) and per-game fake terms `[K]`.

  Each game has the real term, so it counts K times in the total.
  """
  per_generator = real + fake_per_generator
  return GANLosses(tf.reduce_sum(per_generator), per_generator, real,
                   tf.reduce_sum(fake_per_generator))
