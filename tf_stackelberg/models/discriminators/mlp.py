"""`--model.discriminator=mlp`: an MLP trunk, a real/fake logit and an optional K-way
classifier head that predicts which generator made a fake (docs/design.md section 1)."""

import math

import keras
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.models.ensemble import FanInUniform
from tf_stackelberg.models.registry import DISCRIMINATORS


def _dense(units, fan_in, name):
  # Separate initializer objects: one Keras initializer repeats the same values.
  return keras.layers.Dense(units, kernel_initializer=FanInUniform(fan_in),
                            bias_initializer=FanInUniform(fan_in), name=name)


class MLPDiscriminator(keras.Model):
  """x `[N, *input_shape]` -> (logit `[N]`, class logits `[N, K]` or None).

  Inputs are flattened, so any example shape works. LeakyReLU trunk.
  """

  def __init__(self, input_shape=(2,), hidden=(512, 256), num_classes=0,
               leaky_relu_slope=0.2, **kwargs):
    super().__init__(**kwargs)
    self.input_size = math.prod(input_shape)
    widths = (self.input_size,) + tuple(hidden)
    self.trunk = [_dense(w, widths[i], f"dense_{i}") for i, w in enumerate(hidden)]
    self.logit_head = _dense(1, widths[-1], "logit")
    self.class_head = (_dense(num_classes, widths[-1], "classifier")
                       if num_classes else None)
    self.num_classes = num_classes
    self._slope = leaky_relu_slope

  def call(self, x, training=False):
    h = x if len(x.shape) == 2 else tf.reshape(x, [-1, self.input_size])
    for layer in self.trunk:
      h = tf.nn.leaky_relu(layer(h), alpha=self._slope)
    logits = tf.squeeze(self.logit_head(h), axis=-1)
    classes = self.class_head(h) if self.class_head is not None else None
    return logits, classes


@DISCRIMINATORS.register("mlp")
def mlp(config, input_shape, num_classes):
  """Widths `--model.discriminator_hidden`; a class head iff `num_classes` > 0."""
  if config.spectral_norm:
    raise ConfigError("--model.spectral_norm=true is implemented for "
                      "--model.discriminator=dcgan only")
  return MLPDiscriminator(input_shape, config.discriminator_hidden, num_classes,
                          config.leaky_relu_slope, name="discriminator")
