"""`--model.generator=multi_branch`: the capacity baseline of the Stackelberg GAN
paper, ONE generator whose output is the mean of K branch MLPs (docs/design.md
section 3)."""

import math

import keras
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.models.ensemble import (EnsembleBatchNorm, EnsembleDense,
                                            output_activation)
from tf_stackelberg.models.registry import GENERATORS


class MultiBranchGenerator(keras.Model):
  """One generator = mean of `num_branches` MLPs with BatchNorm (eps 0.8) after each
  hidden layer but the first. Returns `[1, B, *output_shape]`, so it reports K = 1."""

  def __init__(self, num_branches=8, hidden=(128, 256, 512, 1024), output_shape=(2,),
               output_activation_name="tanh", leaky_relu_slope=0.2,
               batchnorm_epsilon=0.8, **kwargs):
    super().__init__(**kwargs)
    self.num_generators = 1
    self.num_branches = num_branches
    self.sample_shape = tuple(output_shape)
    self.hidden_layers = [EnsembleDense(num_branches, w, name=f"dense_{i}")
                          for i, w in enumerate(hidden)]
    self.norms = [None] + [EnsembleBatchNorm(batchnorm_epsilon, name=f"bn_{i}")
                           for i in range(1, len(hidden))]
    self.output_layer = EnsembleDense(num_branches, math.prod(self.sample_shape),
                                      name="output")
    self._activation = output_activation(output_activation_name)
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
    out = tf.reduce_mean(branches, axis=0, keepdims=True)
    if len(self.sample_shape) == 1:  # already [K, B, features]
      return out
    return tf.reshape(out, tf.concat([tf.shape(out)[:2], self.sample_shape], 0))


@GENERATORS.register("multi_branch")
def multi_branch(config, output_shape):
  """`--model.num_branches` branches of widths `--model.branch_hidden`."""
  if config.num_generators != 1:
    raise ConfigError("--model.generator=multi_branch is ONE generator: set "
                      "--model.num_generators=1 and the branch count with "
                      "--model.num_branches")
  return MultiBranchGenerator(config.num_branches, config.branch_hidden, output_shape,
                              config.generator_output, config.leaky_relu_slope,
                              config.batchnorm_epsilon, name="generator")
