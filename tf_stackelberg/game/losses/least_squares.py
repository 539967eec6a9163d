"""`--loss.family=least_squares`: LSGAN with targets 0 (fake) and 1 (real) (Mao et
al., 2017), per game k:

  D_k = 1/2 E (d(x) - 1)^2 + 1/2 E d(G_k(z))^2,   G_k = 1/2 E (d(G_k(z)) - 1)^2.
"""

import tensorflow as tf

from tf_stackelberg.game.losses import base
from tf_stackelberg.game.losses.registry import LOSSES


def generator_loss(fake_logits, global_batch_size):
  """sum_k 1/2 E (d(G_k(z)) - 1)^2."""
  return base.generator_losses(
      base.batch_mean(0.5 * tf.square(fake_logits - 1.0), global_batch_size))


def discriminator_loss(real_logits, fake_logits, global_batch_size):
  """sum_k [1/2 E (d(x) - 1)^2 + 1/2 E d(G_k(z))^2]."""
  real = base.batch_mean(0.5 * tf.square(real_logits - 1.0), global_batch_size)
  fake = base.batch_mean(0.5 * tf.square(fake_logits), global_batch_size)
  return base.discriminator_losses(real, fake)


@LOSSES.register("least_squares")
def least_squares(config):  # pylint: disable=unused-argument
  return base.LossFamily(generator_loss, discriminator_loss, None)
