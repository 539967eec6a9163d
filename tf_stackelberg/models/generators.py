"""Generators. All map latents to `[K, B, out]`, K being the number of generators.

* `EnsembleMLPGenerator`: the Stackelberg GAN's K generators (K = 1: a plain GAN).
* `MultiBranchGenerator`: the seed's capacity baseline, ONE generator whose output is
  the mean of K branch MLPs (so it reports K = 1).
"""

import keras
import tensorflow as tf

from tf_stackelberg.models.ensemble import EnsembleBatchNorm, EnsembleDense


def _output_activation(name):
  return tf.tanh if name == "tanh" else tf.identity


class EnsembleMLPGenerator(keras.Model):
  """K MLP generators (Linear, LeakyReLU, ..., Linear, tanh) with stacked weights.

  Call with z `[B, latent_dim]` (shared by all generators) or `[K, B, latent_dim]`
  (one batch per generator); returns `[K, B, output_dim]`.
  """

  def __init__(self, num_generators, hidden=(32,), output_dim=2, output_activation="tanh",
               leaky_relu_slope=0.2, **kwargs):
    super().__init__(**kwargs)
    self.num_generators = num_generators
    self.output_dim = output_dim
    self.hidden_layers = [EnsembleDense(num_generators, w, name=f"dense_{i}")
                          for i, w in enumerate(hidden)]
    self.output_layer = EnsembleDense(num_generators, output_dim, name="output")
    self._activation = _output_activation(output_activation)
    self._slope = leaky_relu_slope

  def call(self, z, training=False):
    h = z
    for layer in self.hidden_layers:
      h = tf.nn.leaky_relu(layer(h), alpha=self._slope)
    return self._activation(self.output_layer(h))


class MultiBranchGenerator(keras.Model):
  """One generator = mean of `num_branches` MLPs with BatchNorm (eps 0.8) after each
  hidden layer but the first. Returns `[1, B, output_dim]`."""

  def __init__(self, num_branches=8, hidden=(128, 256, 512, 1024), output_dim=2,
               output_activation="tanh", leaky_relu_slope=0.2, batchnorm_epsilon=0.8,
               **kwargs):
    super().__init__(**kwargs)
    self.num_generators = 1
    self.num_branches = num_branches
    self.output_dim = output_dim
    self.hidden_layers = [EnsembleDense(num_branches, w, name=f"dense_{i}")
                          for i, w in enumerate(hidden)]
    self.norms = [None] + [EnsembleBatchNorm(batchnorm_epsilon, name=f"bn_{i}")
                           for i in range(1, len(hidden))]
    self.output_layer = EnsembleDense(num_branches, output_dim, name="output")
    self._activation = _output_activation(output_activation)
    self._slope = leaky_relu_slope

  def call(self, z, training=False):
    if len(z.shape) == 3:  # [1, B, d]: the single generator's own batch
      z = z[0]
    h = z
    for layer, norm in zip(self.hidden_layers, self.norms):
      h = layer(h)
      if norm is not None:
        h = norm(h, training=training)
      h = tf.nn.leaky_relu(h, alpha=self._slope)
    branches = self._activation(self.output_layer(h))
    return tf.reduce_mean(branches, axis=0, keepdims=True)


def select_generator(outputs, k):
  """Picks, for each latent b, the output of generator k[b] from `[K, B, ...]`."""
  k = tf.cast(k, tf.int32)
  index = tf.stack([k, tf.range(tf.shape(k)[0], dtype=tf.int32)], axis=1)
  return tf.gather_nd(outputs, index)


def build_generator(config, output_dim=2):
  """The generator a `Config` asks for."""
  if config.generator == "multi_branch":
    return MultiBranchGenerator(config.num_branches, config.branch_hidden, output_dim,
                                config.generator_output, config.leaky_relu_slope,
                                config.batchnorm_epsilon, name="generator")
  return EnsembleMLPGenerator(config.num_generators, config.generator_hidden, output_dim,
                              config.generator_output, config.leaky_relu_slope,
                              name="generator")
