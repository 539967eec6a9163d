"""Discriminators: an MLP trunk, a real/fake logit and an optional K-way classifier head
that predicts which generator made a fake sample (DESIGN section 1)."""

import keras
import tensorflow as tf

from tf_stackelberg.models.ensemble import FanInUniform


def _dense(units, fan_in, name):
  # Separate initializer objects: one Keras initializer repeats the same values.
  return keras.layers.Dense(units, kernel_initializer=FanInUniform(fan_in),
                            bias_initializer=FanInUniform(fan_in), name=name)


class MLPDiscriminator(keras.Model):
  """x `[N, in]` -> (logit `[N]`, class logits `[N, K]` or None). LeakyReLU trunk."""

  def __init__(self, input_dim=2, hidden=(512, 256), num_classes=0, leaky_relu_slope=0.2,
               **kwargs):
    super().__init__(**kwargs)
    widths = (input_dim,) + tuple(hidden)
    self.trunk = [_dense(w, widths[i], f"dense_{i}") for i, w in enumerate(hidden)]
    self.logit_head = _dense(1, widths[-1], "logit")
    self.class_head = (_dense(num_classes, widths[-1], "classifier")
                       if num_classes else None)
    self.num_classes = num_classes
    self._slope = leaky_relu_slope

  def call(self, x, training=False):
    h = x
    for layer in self.trunk:
      h = tf.nn.leaky_relu(layer(h), alpha=self._slope)
    logits = tf.squeeze(self.logit_head(h), axis=-1)
    classes = self.class_head(h) if self.class_head is not None else None
    return logits, classes


def build_discriminator(config, input_dim=2):
  """The discriminator a `Config` asks for (classifier head iff beta > 0)."""
  num_classes = config.num_generators if config.classifier_weight > 0 else 0
  return MLPDiscriminator(input_dim, config.discriminator_hidden, num_classes,
                          config.leaky_relu_slope, name="discriminator")
