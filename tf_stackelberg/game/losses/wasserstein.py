"""`--loss.family=wasserstein`: WGAN with gradient penalty (Arjovsky et al., 2017;
Gulrajani et al., 2017), per game k, with d the critic:

  D_k = E d(G_k(z)) - E d(x) + lambda E (||grad d(x_hat_k)||_2 - 1)^2,
  G_k = -E d(G_k(z)),

x_hat_k = eps x + (1 - eps) G_k(z) with eps ~ U[0, 1] per example and lambda =
`--loss.gradient_penalty`.
"""

import functools

import tensorflow as tf

from tf_stackelberg.game.losses import base
from tf_stackelberg.game.losses.registry import LOSSES


def generator_loss(fake_logits, global_batch_size):
  """sum_k -E d(G_k(z))."""
  return base.generator_losses(base.batch_mean(-fake_logits, global_batch_size))


def discriminator_loss(real_logits, fake_logits, global_batch_size):
  """sum_k [E d(G_k(z)) - E d(x)] (the penalty is added separately)."""
  real = base.batch_mean(-real_logits, global_batch_size)
  fake = base.batch_mean(fake_logits, global_batch_size)
  return base.discriminator_losses(real, fake)


def gradient_penalty(critic_fn, real, fakes, seed, global_batch_size, weight=10.0):
  """`weight * sum_k E (||grad d(x_hat_k)||_2 - 1)^2` on real-fake interpolates.

  Args:
    critic_fn: `x [N, ...] -> [N]` critic values.
    real: `[B, ...]` real examples.
    fakes: `[K, B, ...]` each generator's fakes.
    seed: stateless seed `[2]` of the interpolation weights.
    global_batch_size: the global batch size (see `base`).
    weight: lambda.
  """
  real = tf.cast(real, fakes.dtype)
  shape = tf.shape(fakes)
  eps_shape = tf.concat([shape[:2], tf.ones([tf.rank(fakes) - 2], tf.int32)], 0)
  eps = tf.random.stateless_uniform(eps_shape, seed, dtype=fakes.dtype)
  mixed = eps * real[tf.newaxis] + (1.0 - eps) * fakes
  flat = tf.reshape(mixed, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))
  with tf.GradientTape() as tape:
    tape.watch(flat)
    values = critic_fn(flat)
  grads = tf.reshape(tape.gradient(values, flat), [shape[0], shape[1], -1])
  norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=-1) + 1e-12)
  per_generator = base.batch_mean(tf.square(norms - 1.0), global_batch_size)
  return weight * tf.reduce_sum(per_generator)


@LOSSES.register("wasserstein")
def wasserstein(config):
  penalty = functools.partial(gradient_penalty, weight=config.gradient_penalty)
  return base.LossFamily(generator_loss, discriminator_loss, penalty)
