"""`--model.generator=dcgan`: K convolutional DCGAN generators (Radford et al., 2016;
docs/design.md section 3.1).

One generator maps z `[B, d]` through a dense projection to a `base x base x c_0`
feature map, then through one 5x5 stride-2 'same' transposed convolution per width of
`--model.generator_channels = (c_0, ..., c_{n-1})`: `c_i -> c_{i+1}`, the last to the
image's channels, each doubling the height and width. ReLU after every layer but the
last, the output activation (`--model.generator_output`, tanh: images in [-1, 1]) after
the last, and with `--model.generator_batchnorm` a BatchNorm before every ReLU.
Examples (K of each; `--model.` settings in brackets):

  CIFAR-10 seed   z(100) -> 8x8x256 -> 16x16x128 -> 32x32x3, no BatchNorm, N(0, 0.02)
                  weights [generator_channels=256,128 generator_base_size=8 init=dcgan]
  Stacked-MNIST   z -> 7x7xC -> 14x14xC/2 -> 28x28x3
                  [generator_channels=C,C/2 generator_base_size=7]
  CelebA 64x64    z -> 4x4x512 -> 8 -> 16 -> 32 -> 64x64x3, BatchNorm
                  [generator_channels=512,256,128,64 generator_base_size=4
                   generator_batchnorm=true]

Layout of the K generators. The ensemble is a Python list of K single-generator
sub-models (`DCGANGenerator`) applied in one traced call, their outputs stacked to
`[K, B, H, W, C]`. This was chosen by measurement
(`tools/benchmark_generator_layouts.py`; table in docs/design.md section 3.1:
CIFAR-10 shapes, K = 10, batch 64, TF 2.21 on a 2-CPU AMD EPYC with AVX2) over
formulations that put K into single ops, all of which compute the same function.
Forward+backward time relative to this layout:

* K in the channels, grouped convolutions (`feature_group_count`; TF has no grouped
  transposed convolution, so each is a 3x3 convolution to the 4 sub-pixel phases plus
  a depth-to-space): the gradient is not supported on CPU without XLA, and is 32x
  slower with XLA.
* K in the batch, batched matmuls on 3x3 patches (im2col) or on the 25 taps of each
  input pixel followed by an overlap-add: 3x to 20x; the patch and tap tensors are
  9 to 25 times the activations.
* `tf.vectorized_map` over the K weight sets: 2.2x, and it does not compile with XLA
  (a transposed convolution whose filter varies with the loop index has no
  vectorised rule, so the map falls back to a sequential loop).
* This list with every transposed convolution in the sub-pixel form: 1.8x.

The forward pass of the K = 10 seed generators is 36 G multiply-adds; TF's
transposed-convolution kernels run it at about 43 G multiply-adds per second on the
two CPUs, K of them cost K times one, and the dispatch of K ops is negligible. XLA
and plain TF time it alike. Each sub-model is an ordinary Keras model, so generator k
is exactly a standalone `DCGANGenerator` with the same weights, has its own BatchNorm
statistics, and its variables have distinct paths `generator/generator_k/<layer>/
<weight>`, which the checkpoint lists.
"""

import functools

import keras
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.models import conv
from tf_stackelberg.models.ensemble import output_activation, partitioned_apply
from tf_stackelberg.models.registry import GENERATORS

KERNEL_SIZE = 5


class DCGANGenerator(keras.Model):
  """ONE DCGAN generator: z `[B, d]` -> images `[B, H, W, C]`.

  Args:
    channels: widths `(c_0, ..., c_{n-1})` of the feature maps, from the first down.
    base_size: height and width of the first feature map.
    output_channels: channels of the images.
    batchnorm: BatchNorm (eps 1e-5, momentum 0.9) before every ReLU. The layers
      it follows then have no bias (BatchNorm's offset replaces it).
    init: 'pytorch' or 'dcgan' (see `tf_stackelberg.models.conv`).
    output_activation_name: 'tanh' or 'linear'.

  Example:
    gen = DCGANGenerator((256, 128), base_size=8, output_channels=3, init="dcgan")
    gen(tf.zeros([64, 100])).shape  # [64, 32, 32, 3]
  """

  def __init__(self, channels=(256, 128), base_size=8, output_channels=3,
               batchnorm=False, init="pytorch", output_activation_name="tanh",
               **kwargs):
    super().__init__(**kwargs)
    self.channels = tuple(channels)
    self.base_size = base_size
    self.output_channels = output_channels
    self.image_size = base_size * 2 ** len(self.channels)
    self.batchnorm = batchnorm
    self._activation = output_activation(output_activation_name)
    first = base_size * base_size * self.channels[0]
    self.project = conv.Dense(first, init=init, use_bias=not batchnorm, name="project")
    self.project_norm = conv.batch_norm("project_bn") if batchnorm else None
    widths = self.channels[1:] + (output_channels,)
    self.deconvs, self.norms = [], []
    for i, width in enumerate(widths):
      last = i == len(widths) - 1
      fan_in = conv.transposed_fan_in(KERNEL_SIZE, width)
      self.deconvs.append(keras.layers.Conv2DTranspose(
          width, KERNEL_SIZE, strides=2, padding="same",
          use_bias=last or not batchnorm,
          kernel_initializer=conv.kernel_initializer(init, fan_in),
          bias_initializer=conv.bias_initializer(init, fan_in), name=f"deconv_{i}"))
      self.norms.append(conv.batch_norm(f"deconv_{i}_bn")
                        if batchnorm and not last else None)

  def call(self, z, training=False):
    h = tf.reshape(self.project(z), [-1, self.base_size, self.base_size,
                                     self.channels[0]])
    if self.project_norm is not None:
      h = self.project_norm(h, training=training)
    h = tf.nn.relu(h)
    for i, (deconv, norm) in enumerate(zip(self.deconvs, self.norms)):
      h = deconv(h)
      if norm is not None:
        h = norm(h, training=training)
      h = tf.nn.relu(h) if i < len(self.deconvs) - 1 else self._activation(h)
    return h


class EnsembleDCGANGenerator(keras.Model):
  """K DCGAN generators: z `[B, d]` (shared) or `[K, B, d]` -> `[K, B, H, W, C]`.

  A list of K `DCGANGenerator` sub-models named `generator_0` ... (see the module
  docstring for why); every keyword but `num_generators` and `name` goes to them.

  Example:
    gen = EnsembleDCGANGenerator(10, channels=(256, 128), base_size=8)
    gen(tf.zeros([64, 100])).shape      # [10, 64, 32, 32, 3]
    gen(tf.zeros([10, 64, 100])).shape  # the same, one latent batch per generator
  """

  def __init__(self, num_generators, channels=(256, 128), base_size=8,
               output_channels=3, batchnorm=False, init="pytorch",
               output_activation_name="tanh", **kwargs):
    super().__init__(**kwargs)
    self.num_generators = num_generators
    self.members = [DCGANGenerator(channels, base_size, output_channels, batchnorm,
                                   init, output_activation_name, name=f"generator_{k}")
                    for k in range(num_generators)]
    size = self.members[0].image_size
    self.sample_shape = (size, size, output_channels)

  def call(self, z, training=False):
    if len(z.shape) == 2:
      outputs = [member(z, training=training) for member in self.members]
    else:
      outputs = [member(z[k], training=training)
                 for k, member in enumerate(self.members)]
    return tf.stack(outputs)

  def select(self, z, k):
    """Sample b of generator k[b] from z[b], in inference mode: z `[B, d]`, k `[B]`
    -> `[B, H, W, C]`, running each generator on its own latents only."""
    return partitioned_apply([functools.partial(member, training=False)
                              for member in self.members], z, k,
                             self.sample_shape)


def check_image_shape(output_shape, channels, base_size):
  """Raises `ConfigError` unless `output_shape` is `(S, S, C)` with
  `S = base_size * 2 ** len(channels)`."""
  shape = tuple(output_shape)
  size = base_size * 2 ** len(channels)
  flags = (f"--model.generator_base_size={base_size} and "
           f"--model.generator_channels={','.join(map(str, channels))}")
  if len(shape) != 3:
    raise ConfigError(f"--model.generator=dcgan makes images [height, width, "
                      f"channels]; the data's examples have shape {list(shape)}")
  if shape[0] != size or shape[1] != size:
    raise ConfigError(
        f"{flags} make {size}x{size} images (base size x 2^{len(channels)} "
        f"upsamplings), but the data's images are {shape[0]}x{shape[1]}: set the base "
        f"size to the image size / 2^(number of widths) or change the widths")


def parameter_count(channels, base_size, latent_dim, output_channels, batchnorm=False):
  """Trainable parameters of ONE `DCGANGenerator` (closed form; real-valued widths
  give the smooth count `equal_capacity_channels` bisects on).

  For the CIFAR-10 seed (channels 256,128, base 8, z of 100, 3 channels, no
  BatchNorm): 1,654,784 + 819,328 + 9,603 = 2,483,715.
  """
  first = base_size * base_size * channels[0]
  # The projection's kernel, then its bias or a BatchNorm (gamma, beta per channel).
  total = latent_dim * first + (2 * channels[0] if batchnorm else first)
  widths = tuple(channels) + (output_channels,)
  for i in range(len(channels)):
    last = i == len(channels) - 1
    total += KERNEL_SIZE ** 2 * widths[i] * widths[i + 1]
    total += widths[i + 1] * (1 if last or not batchnorm else 2)
  return total


def equal_capacity_channels(channels, num_generators, base_size, latent_dim,
                            output_channels, batchnorm=False, multiple=16):
  """Widths of ONE generator with about `num_generators` times the parameters of a
  generator of widths `channels` (the single-generator baseline of equal capacity).

  All widths are scaled by one factor (found by bisection on the closed-form count)
  and rounded to the nearest `multiple`. Returns `(widths, parameters)`.

  For the CIFAR-10 seed (K = 10 x (256, 128), base 8, z of 100, 3 channels, no
  BatchNorm; 10 x 2,483,715 = 24,837,150 parameters): (1168, 592) with 24,881,347
  parameters (1.002 times); with `multiple=32`, (1184, 576): 24,746,755 (0.996).

  Example:
    widths, count = equal_capacity_channels((256, 128), 10, 8, 100, 3)
  """
  def count(widths):
    return parameter_count(widths, base_size, latent_dim, output_channels, batchnorm)

  target = num_generators * count(tuple(channels))

  def scaled(factor):
    return tuple(max(multiple, multiple * round(c * factor / multiple))
                 for c in channels)

  lo, hi = 1.0, float(num_generators)  # count grows at least linearly in the factor
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    if count(tuple(c * mid for c in channels)) < target:
      lo = mid
    else:
      hi = mid
  widths = scaled(0.5 * (lo + hi))
  return widths, count(widths)


@GENERATORS.register("dcgan")
def dcgan(config, output_shape):
  """`--model.num_generators` DCGAN generators of widths `--model.generator_channels`
  from a `--model.generator_base_size` square map, BatchNorm iff
  `--model.generator_batchnorm`, weights by `--model.init`."""
  check_image_shape(output_shape, config.generator_channels, config.generator_base_size)
  return EnsembleDCGANGenerator(config.num_generators, config.generator_channels,
                                config.generator_base_size, output_shape[-1],
                                config.generator_batchnorm, config.init,
                                config.generator_output, name="generator")
