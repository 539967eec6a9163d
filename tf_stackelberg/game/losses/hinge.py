"""`--loss.family=hinge`: the hinge loss of geometric GAN and SNGAN (Lim & Ye, 2017;
Miyato et al., 2018), per game k:

  D_k = E relu(1 - d(x)) + E relu(1 + d(G_k(z))),   G_k = -E d(G_k(z)).
"""

import tensorflow as tf

from tf_stackelberg.game.losses import base
from tf_stackelberg.game.losses.registry import LOSSES


def generator_loss(fake_logits, global_batch_size):
  """sum_k -E d(G_k(z))."""
  return base.generator_losses(base.batch_mean(-fake_logits, global_batch_size))


def discriminator_loss(real_logits, fake_logits, global_batch_size):
  """sum_k [E relu(1 - d(x)) + E relu(1 + d(G_k(z)))]."""
  real = base.batch_mean(tf.nn.relu(1.0 - real_logits), global_batch_size)
  fake = base.batch_mean(tf.nn.relu(1.0 + fake_logits), global_batch_size)
  return base.discriminator_losses(real, fake)


@LOSSES.register("hinge")
def hinge(config):  # pylint: disable=unused-argument
  return base.LossFamily(generator_loss, discriminator_loss, None)
