"""Layers that hold K members' weights stacked as [K, ...] and apply them in one op.

The reference code loops over K PyTorch modules; here a dense layer of K members is one
einsum, so the whole ensemble forms one XLA cluster and K costs no Python overhead.
"""

import functools
import math

import keras
import tensorflow as tf

from tf_stackelberg.models.layer_options import sync_batch_norm


def FanInUniform(fan_in, seed=None):  # pylint: disable=invalid-name
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Linear layers.

  The reference scripts rely on this initialisation; `fan_in` is explicit because
  Keras would compute the fan of a stacked kernel [K, in, out] wrongly.
  """
  limit = 1.0 / math.sqrt(fan_in)
  return keras.initializers.RandomUniform(-limit, limit, seed=seed)


class EnsembleDense(keras.layers.Layer):
  """K independent dense layers with stacked weights.

  Input `[K, B, in]` (one batch per member) or `[B, in]` (the same batch for all
  members); output `[K, B, units]`. Kernel `[K, in, units]`, bias `[K, units]`.

  Example:
    layer = EnsembleDense(num_members=8, units=32)
    y = layer(tf.zeros([64, 2]))   # y.shape == [8, 64, 32]
  """

  def __init__(self, num_members, units, **kwargs):
    super().__init__(**kwargs)
    self.num_members = num_members
    self.units = units

  def build(self, input_shape):
    fan_in = int(input_shape[-1])
    # One initializer object per weight: a Keras initializer repeats its values.
    self.kernel = self.add_weight(name="kernel", initializer=FanInUniform(fan_in),
                                  shape=(self.num_members, fan_in, self.units))
    self.bias = self.add_weight(name="bias", initializer=FanInUniform(fan_in),
                                shape=(self.num_members, self.units))

  def call(self, inputs):
    if len(inputs.shape) == 2:
      outputs = tf.einsum("bi,kio->kbo", inputs, self.kernel)
    else:
      outputs = tf.einsum("kbi,kio->kbo", inputs, self.kernel)
    return outputs + self.bias[:, None, :]

  def member(self, index, inputs):
    """Member `index` alone on `[B, in]`: `[B, units]`."""
    return tf.matmul(inputs, self.kernel[index]) + self.bias[index]

  def get_config(self):
    return {**super().get_config(), "num_members": self.num_members, "units": self.units}


class EnsembleBatchNorm(keras.layers.Layer):
  """BatchNorm with separate statistics and affine parameters per member.

  Folds `[K, B, F]` into `[B, K*F]` so one standard BatchNormalization normalises each
  (member, feature) pair over the batch, exactly as K separate BatchNorm1d layers.
  """

  def __init__(self, epsilon=0.8, momentum=0.9, **kwargs):
    super().__init__(**kwargs)
    # A fixed name: Keras numbers unnamed layers per process, and checkpoints key
    # variables by path, so a second model built in the same process (evaluation
    # after training, a test) would otherwise look for other names. The name is the
    # one a fresh process gave the first such layer, which keeps the checkpoints of
    # generators with one BatchNorm (the MNIST seeds) readable.
    self.norm = keras.layers.BatchNormalization(epsilon=epsilon, momentum=momentum,
                                                name="batch_normalization",
                                                synchronized=sync_batch_norm())

  def call(self, inputs, training=False):
    k, f = inputs.shape[0], inputs.shape[-1]
    folded = tf.reshape(tf.transpose(inputs, [1, 0, 2]), [-1, k * f])
    normed = self.norm(folded, training=training)
    return tf.transpose(tf.reshape(normed, [-1, k, f]), [1, 0, 2])

  def member(self, index, inputs):
    """Member `index` alone on `[B, F]`, in inference mode (its moving statistics)."""
    f = inputs.shape[-1]
    part = slice(index * f, (index + 1) * f)
    norm = self.norm
    scale = tf.math.rsqrt(norm.moving_variance[part] + norm.epsilon)
    if norm.gamma is not None:
      scale *= norm.gamma[part]
    shift = -norm.moving_mean[part] * scale
    if norm.beta is not None:
      shift += norm.beta[part]
    return inputs * scale + shift


def _call_as(fn, inputs, dtype):
  """`fn(inputs)` as `dtype` (members computing in a mixed precision give the
  latents' dtype back)."""
  return tf.cast(fn(inputs), dtype)


def partitioned_apply(member_fns, z, k, sample_shape):
  """`member_fns[k[b]](z[b])` for every b, each member run once on its own latents.

  Costs one generator evaluation per latent where running every member on the whole
  batch and picking rows (`select_generator`) costs K. Gradients pass to z. XLA
  cannot compile it for indices computed inside the compiled function (the stitch
  needs its positions as constants, the partition's gradient too), so callers under
  XLA use `select_generator` instead (see `StackelbergGAN.generate`).

  A member with no latents is not run: it gives an empty `[0, *sample_shape]`. The
  gradient of an empty batch through a transposed convolution is not reliable on
  every CPU kernel (oneDNN on an AVX-512 CPU returned the incoming gradient's shape
  for `Conv2DBackpropInput` and failed in the next `ReluGrad`).

  Args:
    member_fns: K functions `[n, d] -> [n, *sample_shape]` (n > 0).
    z: latents `[B, d]`.
    k: int `[B]` in [0, K).
    sample_shape: the shape of one member output.
  """
  k = tf.cast(k, tf.int32)
  num = len(member_fns)
  parts = tf.dynamic_partition(z, k, num)
  positions = tf.dynamic_partition(tf.range(tf.shape(z)[0]), k, num)
  empty = tf.zeros([0, *sample_shape], z.dtype)
  outputs = [tf.cond(tf.shape(part)[0] > 0,
                     functools.partial(_call_as, fn, part, z.dtype), lambda: empty)
             for fn, part in zip(member_fns, parts)]
  return tf.dynamic_stitch(positions, outputs)


def select_generator(outputs, k):
  """Picks, for each latent b, the output of generator k[b] from `[K, B, ...]`."""
  k = tf.cast(k, tf.int32)
  index = tf.stack([k, tf.range(tf.shape(k)[0], dtype=tf.int32)], axis=1)
  return tf.gather_nd(outputs, index)


def output_activation(name):
  """The output nonlinearity `--model.generator_output` names."""
  return {"tanh": tf.tanh, "linear": tf.identity}[name]
