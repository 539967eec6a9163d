"""`--loss.family=non_saturating`: the reference code's losses (Goodfellow et al.,
2014), per game k:

  D_k = 1/2 [BCE(d(x), 1) + BCE(d(G_k(z)), 0)],   G_k = BCE(d(G_k(z)), 1).
"""

from tf_stackelberg.game.losses import base
from tf_stackelberg.game.losses.registry import LOSSES


def generator_loss(fake_logits, global_batch_size):
  """sum_k BCE(D(G_k(z)), 1)."""
  return base.generator_losses(
      base.binary_cross_entropy(fake_logits, 1.0, global_batch_size))


def discriminator_loss(real_logits, fake_logits, global_batch_size):
  """sum_k 1/2 [BCE(D(x), 1) + BCE(D(G_k(z)), 0)]: the real term counts K times."""
  real = 0.5 * base.binary_cross_entropy(real_logits, 1.0, global_batch_size)
  fake = 0.5 * base.binary_cross_entropy(fake_logits, 0.0, global_batch_size)
  return base.discriminator_losses(real, fake)


@LOSSES.register("non_saturating")
def non_saturating(config):  # pylint: disable=unused-argument
  return base.LossFamily(generator_loss, discriminator_loss, None)
