"""Builds the compiled game a `Config` describes, from the registries."""

import keras

from tf_stackelberg.game.losses.registry import LOSSES
from tf_stackelberg.game.stackelberg_gan import StackelbergGAN
from tf_stackelberg.models.layer_options import layer_options, wrap_optimizer
from tf_stackelberg.models.registry import DISCRIMINATORS, GENERATORS


def build_generator(config, data_shape):
  """The generator `--model.generator` names, making samples of `data_shape`."""
  return GENERATORS.get(config.model.generator)(config.model, tuple(data_shape))


def build_discriminator(config, data_shape, num_generators):
  """The discriminator `--model.discriminator` names (class head iff beta > 0)."""
  num_classes = num_generators if config.loss.classifier_weight > 0 else 0
  return DISCRIMINATORS.get(config.model.discriminator)(config.model, tuple(data_shape),
                                                        num_classes)


def build_gan(config, data_shape, generator=None):
  """A compiled, fully built `StackelbergGAN` (call inside the strategy's scope).

  The models compute in `--runtime.precision` (float32 weights; a float16 game
  scales its losses) and their BatchNorm layers synchronise across replicas with
  `--runtime.sync_batch_norm` (`models/layer_options.py`).

  With `--model.ema_decay` > 0 a second generator of the same architecture holds the
  exponential moving average of the generator's weights (docs/design.md section 3.2).

  Args:
    config: the `Config`.
    data_shape: shape of one example, e.g. (2,) or (32, 32, 3).
    generator: optional generator model to use instead of the one `config` names
      (e.g. a baseline implementation with the same interface).
  """
  runtime = config.runtime
  with layer_options(runtime.precision, runtime.sync_batch_norm):
    if generator is None:
      generator = build_generator(config, data_shape)
    ema_decay = config.model.ema_decay
    ema_generator = build_generator(config, data_shape) if ema_decay > 0 else None
    discriminator = build_discriminator(config, data_shape, generator.num_generators)
  gan = StackelbergGAN(generator, discriminator,
                       latent_dim=config.model.latent_dim,
                       loss=LOSSES.get(config.loss.family)(config.loss),
                       shared_z=config.game.shared_z,
                       update_order=config.game.update_order,
                       classifier_weight=config.loss.classifier_weight, seed=config.seed,
                       latent_prior=config.model.latent_distribution,
                       ema_generator=ema_generator, ema_decay=ema_decay,
                       generator_prior=config.model.generator_prior,
                       name="stackelberg_gan")
  game = config.game

  def adam(learning_rate):
    return wrap_optimizer(keras.optimizers.Adam(learning_rate or game.learning_rate,
                                                beta_1=game.beta_1, beta_2=game.beta_2),
                          runtime.precision)

  gan.compile(g_optimizer=adam(game.generator_learning_rate),
              d_optimizer=adam(game.discriminator_learning_rate),
              steps_per_execution=config.trainer.steps_per_execution, jit_compile=False)
  # Keras turns XLA off whenever TF op determinism is on, because some XLA ops have no
  # deterministic kernel on GPU. The game's ops (dense layers, elementwise maps and
  # reductions) are deterministic under XLA, which is what makes the run both
  # reproducible and fast, so the setting is applied directly.
  gan._jit_compile = bool(config.runtime.jit_compile)  # pylint: disable=protected-access
  gan.build_all(list(data_shape))
  return gan
