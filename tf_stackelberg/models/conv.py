"""Building blocks of the convolutional (dcgan) models: weight initialisation, the
BatchNorm they use, and convolution and dense layers with optional spectral
normalisation (docs/design.md section 3.1).

`--model.init` names the initialisation:

* `pytorch`: every weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the
  default of PyTorch's `Linear`, `Conv2d` and `ConvTranspose2d`. PyTorch derives the
  fan of a transposed convolution from the second axis of its weight `[in, out, kh,
  kw]`, i.e. `out * kh * kw`; `transposed_fan_in` keeps that convention.
* `dcgan`: weights from N(0, 0.02) and zero biases (Radford et al., 2016).
"""

import keras
import tensorflow as tf

from tf_stackelberg.models.ensemble import FanInUniform
from tf_stackelberg.models.layer_options import sync_batch_norm

INITS = ("pytorch", "dcgan")
# BatchNorm of the standard DCGAN: PyTorch's BatchNorm2d defaults (eps 1e-5, running
# statistics updated with weight 0.1 on the new batch, which is Keras momentum 0.9).
BATCHNORM_EPSILON = 1e-5
BATCHNORM_MOMENTUM = 0.9


def kernel_initializer(init, fan_in):
  """A fresh initializer of a kernel whose outputs each see `fan_in` inputs."""
  if init == "dcgan":
    return keras.initializers.RandomNormal(stddev=0.02)
  if init == "pytorch":
    return FanInUniform(fan_in)
  raise ValueError(f"unknown init {init!r}; expected one of {INITS}")


def bias_initializer(init, fan_in):
  """A fresh initializer of a bias (zeros under 'dcgan')."""
  if init == "dcgan":
    return keras.initializers.Zeros()
  return kernel_initializer(init, fan_in)


def transposed_fan_in(kernel_size, filters):
  """PyTorch's fan-in of a transposed convolution: its output channels times the
  kernel area (see the module docstring)."""
  return kernel_size * kernel_size * filters


def batch_norm(name):
  """The BatchNorm of the dcgan models (per-channel over batch, height and width)."""
  return keras.layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM,
                                         epsilon=BATCHNORM_EPSILON, name=name,
                                         synchronized=sync_batch_norm())


def spectral_norm_estimate(matrix, u):
  """One power iteration on `matrix` `[m, n]` from the unit vector `u` `[n]`.

  Returns `(u_next, sigma)`: the next right singular vector estimate and
  `sigma = v^T matrix u_next` with `v = normalize(matrix u)`, the estimate of the
  largest singular value (Miyato et al., 2018, Algorithm 1). The vectors carry no
  gradient, `sigma` does through `matrix`, as in the paper.
  """
  u = tf.stop_gradient(u)
  v = tf.stop_gradient(tf.math.l2_normalize(tf.linalg.matvec(matrix, u)))
  u_next = tf.stop_gradient(tf.math.l2_normalize(tf.linalg.matvec(matrix, v,
                                                                  transpose_a=True)))
  sigma = tf.tensordot(v, tf.linalg.matvec(matrix, u_next), 1)
  return u_next, sigma


class _Normalizable(keras.layers.Layer):
  """A layer with a `kernel` whose last axis is its outputs, optionally divided by
  its spectral norm.

  The kernel is read as the matrix `[prod(other axes), outputs]` (SNGAN's reshape of
  a convolution kernel). With `spectral_norm` the layer keeps the right singular
  vector estimate `u` as a non-trainable variable, so that it is checkpointed with
  the weights. A call in training makes one power iteration, stores the new `u` and
  divides the kernel by the new estimate; a call in inference divides by the
  estimate of the stored `u` without changing it, so evaluation and sampling have no
  side effects.
  """

  def __init__(self, init="pytorch", spectral_norm=False, use_bias=True, **kwargs):
    super().__init__(**kwargs)
    self.init = init
    self.spectral_norm = spectral_norm
    self.use_bias = use_bias

  def _add_parameters(self, kernel_shape, fan_in):
    self.kernel = self.add_weight(name="kernel", shape=kernel_shape,
                                  initializer=kernel_initializer(self.init, fan_in))
    self.bias = (self.add_weight(name="bias", shape=(kernel_shape[-1],),
                                 initializer=bias_initializer(self.init, fan_in))
                 if self.use_bias else None)
    if self.spectral_norm:
      # Every replica computes the same vector from the same weights: the first
      # replica's value is kept when a distribution strategy updates it.
      self.u = self.add_weight(name="sn_u", shape=(kernel_shape[-1],), trainable=False,
                               initializer=keras.initializers.RandomNormal(stddev=1.0),
                               aggregation="only_first_replica")

  def normalized_kernel(self, training=False):
    """The kernel the layer applies (divided by its spectral norm estimate)."""
    kernel = tf.convert_to_tensor(self.kernel)
    if not self.spectral_norm:
      return kernel
    matrix = tf.reshape(kernel, [-1, kernel.shape[-1]])
    u = tf.math.l2_normalize(tf.convert_to_tensor(self.u))
    if training:
      u, sigma = spectral_norm_estimate(matrix, u)
      self.u.assign(u)
    else:
      v = tf.math.l2_normalize(tf.linalg.matvec(matrix, u))
      sigma = tf.tensordot(v, tf.linalg.matvec(matrix, u), 1)
    return kernel / sigma

  def _add_bias(self, outputs):
    return outputs if self.bias is None else outputs + self.bias

  def get_config(self):
    return {**super().get_config(), "init": self.init,
            "spectral_norm": self.spectral_norm, "use_bias": self.use_bias}


class Conv2D(_Normalizable):
  """A 'same'-padded NHWC convolution, kernel `[k, k, in, filters]`.

  Example:
    conv = Conv2D(64, kernel_size=5, strides=2, spectral_norm=True)
    conv(tf.zeros([8, 32, 32, 3]), training=True).shape  # [8, 16, 16, 64]
  """

  def __init__(self, filters, kernel_size=5, strides=2, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.kernel_size = kernel_size
    self.strides = strides

  def build(self, input_shape):
    cin = int(input_shape[-1])
    k = self.kernel_size
    self._add_parameters((k, k, cin, self.filters), fan_in=k * k * cin)

  def call(self, inputs, training=False):
    kernel = self.normalized_kernel(training)
    return self._add_bias(tf.nn.conv2d(inputs, kernel, self.strides, "SAME"))

  def get_config(self):
    return {**super().get_config(), "filters": self.filters,
            "kernel_size": self.kernel_size, "strides": self.strides}


class Dense(_Normalizable):
  """A dense layer `[N, in] -> [N, units]`, kernel `[in, units]`."""

  def __init__(self, units, **kwargs):
    super().__init__(**kwargs)
    self.units = units

  def build(self, input_shape):
    fan_in = int(input_shape[-1])
    self._add_parameters((fan_in, self.units), fan_in=fan_in)

  def call(self, inputs, training=False):
    return self._add_bias(tf.matmul(inputs, self.normalized_kernel(training)))

  def get_config(self):
    return {**super().get_config(), "units": self.units}
