"""Builds the compiled game a `Config` describes."""

import keras

from tf_stackelberg.game.stackelberg_gan import StackelbergGAN
from tf_stackelberg.models.discriminators import build_discriminator
from tf_stackelberg.models.generators import build_generator


def build_gan(config, data_dim=2, generator=None):
  """A compiled, fully built `StackelbergGAN` (call inside the strategy's scope).

  Args:
    config: the `Config`.
    data_dim: dimension of the data points.
    generator: optional generator model to use instead of the one `config` names
      (e.g. a baseline implementation with the same interface).
  """
  if generator is None:
    generator = build_generator(config, data_dim)
  gan = StackelbergGAN(generator,
                       build_discriminator(config, data_dim),
                       latent_dim=config.latent_dim, shared_z=config.shared_z,
                       update_order=config.update_order,
                       classifier_weight=config.classifier_weight, seed=config.seed,
                       name="stackelberg_gan")

  def adam():
    return keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1,
                                 beta_2=config.beta_2)

  gan.compile(g_optimizer=adam(), d_optimizer=adam(),
              steps_per_execution=config.steps_per_execution, jit_compile=False)
  # Keras turns XLA off whenever TF op determinism is on, because some XLA ops have no
  # deterministic kernel on GPU. The game's ops (dense layers, elementwise maps and
  # reductions) are deterministic under XLA, which is what makes the run both
  # reproducible and fast, so the setting is applied directly.
  gan._jit_compile = bool(config.jit_compile)  # pylint: disable=protected-access
  gan.build_all([data_dim])
  return gan
