"""`--model.generator=mlp`: K MLP generators with stacked weights (docs/design.md
section 3)."""

import math

import keras
import tensorflow as tf

from tf_stackelberg.models.ensemble import EnsembleDense, output_activation
from tf_stackelberg.models.registry import GENERATORS


class EnsembleMLPGenerator(keras.Model):
  """K MLP generators (Linear, LeakyReLU, ..., Linear, tanh) with stacked weights.

  Call with z `[B, latent_dim]` (shared by all generators) or `[K, B, latent_dim]`
  (one batch per generator); returns `[K, B, *output_shape]`.

  Example:
    gen = EnsembleMLPGenerator(8, hidden=(32,), output_shape=(2,))
    gen(tf.zeros([64, 2])).shape  # [8, 64, 2]
  """

  def __init__(self, num_generators, hidden=(32,), output_shape=(2,),
               output_activation_name="tanh", leaky_relu_slope=0.2, **kwargs):
    super().__init__(**kwargs)
    self.num_generators = num_generators
    self.sample_shape = tuple(output_shape)
    self.hidden_layers = [EnsembleDense(num_generators, w, name=f"dense_{i}")
                          for i, w in enumerate(hidden)]
    self.output_layer = EnsembleDense(num_generators, math.prod(self.sample_shape),
                                      name="output")
    self._activation = output_activation(output_activation_name)
    self._slope = leaky_relu_slope

  def call(self, z, training=False):
    h = z
    for layer in self.hidden_layers:
      h = tf.nn.leaky_relu(layer(h), alpha=self._slope)
    out = self._activation(self.output_layer(h))
    if len(self.sample_shape) == 1:  # already [K, B, features]
      return out
    return tf.reshape(out, tf.concat([tf.shape(out)[:2], self.sample_shape], 0))


@GENERATORS.register("mlp")
def mlp(config, output_shape):
  """`--model.num_generators` MLPs of widths `--model.generator_hidden`."""
  return EnsembleMLPGenerator(config.num_generators, config.generator_hidden,
                              output_shape, config.generator_output,
                              config.leaky_relu_slope, name="generator")
