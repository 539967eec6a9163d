"""`--model.generator=mlp`: K MLP generators with stacked weights (docs/design.md
section 3)."""

import functools
import math

import keras
import tensorflow as tf

from tf_stackelberg.models.ensemble import (EnsembleBatchNorm, EnsembleDense,
                                            output_activation, partitioned_apply)
from tf_stackelberg.models.registry import GENERATORS


class EnsembleMLPGenerator(keras.Model):
  """K MLP generators (Linear, LeakyReLU, ..., Linear, tanh) with stacked weights.

  With `batchnorm_epsilon` > 0 every hidden layer but the first is followed by a
  BatchNorm with that epsilon and per-generator statistics, as the MNIST and
  Fashion-MNIST seeds (their PyTorch `BatchNorm1d(n, 0.8)` sets eps = 0.8).

  Call with z `[B, latent_dim]` (shared by all generators) or `[K, B, latent_dim]`
  (one batch per generator); returns `[K, B, *output_shape]`.

  Example:
    gen = EnsembleMLPGenerator(8, hidden=(32,), output_shape=(2,))
    gen(tf.zeros([64, 2])).shape  # [8, 64, 2]
  """

  def __init__(self, num_generators, hidden=(32,), output_shape=(2,),
               output_activation_name="tanh", leaky_relu_slope=0.2,
               batchnorm_epsilon=0.0, **kwargs):
    super().__init__(**kwargs)
    self.num_generators = num_generators
    self.sample_shape = tuple(output_shape)
    self.hidden_layers = [EnsembleDense(num_generators, w, name=f"dense_{i}")
                          for i, w in enumerate(hidden)]
    self.norms = [None] + [EnsembleBatchNorm(batchnorm_epsilon, name=f"bn_{i}")
                           if batchnorm_epsilon > 0 else None
                           for i in range(1, len(hidden))]
    self.output_layer = EnsembleDense(num_generators, math.prod(self.sample_shape),
                                      name="output")
    self._activation = output_activation(output_activation_name)
    self._slope = leaky_relu_slope

  def call(self, z, training=False):
    h = z
    for layer, norm in zip(self.hidden_layers, self.norms):
      h = layer(h)
      if norm is not None:
        h = norm(h, training=training)
      h = tf.nn.leaky_relu(h, alpha=self._slope)
    out = self._activation(self.output_layer(h))
    if len(self.sample_shape) == 1:  # already [K, B, features]
      return out
    return tf.reshape(out, tf.concat([tf.shape(out)[:2], self.sample_shape], 0))

  def _member_forward(self, index, z):
    """Generator `index` alone on z `[n, d]`, in inference mode: `[n, *shape]`."""
    h = z
    for layer, norm in zip(self.hidden_layers, self.norms):
      h = layer.member(index, h)
      if norm is not None:
        h = norm.member(index, h)
      h = tf.nn.leaky_relu(h, alpha=self._slope)
    out = self._activation(self.output_layer.member(index, h))
    return tf.reshape(out, tf.concat([tf.shape(out)[:1], self.sample_shape], 0))

  def select(self, z, k):
    """Sample b of generator k[b] from z[b], in inference mode: z `[B, d]`, k `[B]`
    -> `[B, *shape]`, running each generator on its own latents only."""
    return partitioned_apply([functools.partial(self._member_forward, i)
                              for i in range(self.num_generators)], z, k,
                             self.sample_shape)


@GENERATORS.register("mlp")
def mlp(config, output_shape):
  """`--model.num_generators` MLPs of widths `--model.generator_hidden`, with
  BatchNorm iff `--model.generator_batchnorm`."""
  epsilon = config.batchnorm_epsilon if config.generator_batchnorm else 0.0
  return EnsembleMLPGenerator(config.num_generators, config.generator_hidden,
                              output_shape, config.generator_output,
                              config.leaky_relu_slope, epsilon, name="generator")
