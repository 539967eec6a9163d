"""`--model.discriminator=dcgan`: a DCGAN discriminator with a real/fake logit and an
optional K-way classifier head on the same trunk (docs/design.md sections 1.1 and
3.1).

Trunk: one 5x5 stride-2 'same' convolution per width of
`--model.discriminator_channels` (seed 128,256,512), each followed by BatchNorm (with
`--model.discriminator_batchnorm`) and LeakyReLU(0.2), then flatten. Heads: a dense
logit and, when the game has a classifier term, a dense layer of K class logits.

With BatchNorm (`uses_batch_statistics`), the game passes the B real examples and
the K B fakes through D in two separate calls (`StackelbergGAN._discriminate`), so
that fakes are normalised by fake-only statistics in both players' updates.

`--model.spectral_norm` divides the kernel of every convolution and dense layer (both
heads included) by its spectral norm estimate (SNGAN, Miyato et al., 2018; see
`tf_stackelberg.models.conv`). It refuses BatchNorm: BatchNorm rescales each feature
by its batch standard deviation and its learnt gain, which undoes the Lipschitz bound
the normalisation provides, and SNGAN's discriminators have none. Keras' own
`keras.layers.SpectralNormalization` is not used: in training it overwrites the
kernel variable with the normalised kernel (the optimizer then updates the normalised
weights and no gradient flows through the norm), while here the normalisation is a
reparameterisation as in the paper, and inference leaves every variable unchanged.
"""

import math

import keras
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.models import conv
from tf_stackelberg.models.registry import DISCRIMINATORS

KERNEL_SIZE = 5


class DCGANDiscriminator(keras.Model):
  """x `[N, H, W, C]` -> (logit `[N]`, class logits `[N, K]` or None).

  Args:
    input_shape: `(H, W, C)` of one example.
    channels: widths of the stride-2 convolutions.
    num_classes: K of the class head (0: no head; `class_head` is then None).
    batchnorm: BatchNorm (eps 1e-5, momentum 0.9) after every convolution, which
      then has no bias.
    spectral_norm: spectral normalisation of every kernel (excludes `batchnorm`).
    init: 'pytorch' or 'dcgan' (see `tf_stackelberg.models.conv`).
    leaky_relu_slope: negative slope of the LeakyReLUs.

  Example:
    disc = DCGANDiscriminator((32, 32, 3), (128, 256, 512), num_classes=10)
    logits, classes = disc(tf.zeros([8, 32, 32, 3]))  # [8], [8, 10]
  """

  def __init__(self, input_shape=(32, 32, 3), channels=(128, 256, 512), num_classes=0,
               batchnorm=True, spectral_norm=False, init="pytorch",
               leaky_relu_slope=0.2, **kwargs):
    super().__init__(**kwargs)
    if batchnorm and spectral_norm:
      raise ValueError("spectral normalisation excludes BatchNorm in the discriminator")
    self.example_shape = tuple(input_shape)
    self.num_classes = num_classes
    # Read by the game: with batch statistics, real and generated examples are
    # discriminated in separate passes (docs/design.md section 3.1).
    self.uses_batch_statistics = bool(batchnorm)
    self.convs = [conv.Conv2D(width, KERNEL_SIZE, strides=2, init=init,
                              spectral_norm=spectral_norm, use_bias=not batchnorm,
                              name=f"conv_{i}") for i, width in enumerate(channels)]
    self.norms = [conv.batch_norm(f"conv_{i}_bn") if batchnorm else None
                  for i in range(len(channels))]
    height, width = self.example_shape[:2]
    for _ in channels:  # 'same' padding, stride 2
      height, width = math.ceil(height / 2), math.ceil(width / 2)
    self.feature_size = height * width * channels[-1]
    self.logit_head = conv.Dense(1, init=init, spectral_norm=spectral_norm,
                                 name="logit")
    self.class_head = (conv.Dense(num_classes, init=init, spectral_norm=spectral_norm,
                                  name="classifier") if num_classes else None)
    self._slope = leaky_relu_slope

  def call(self, x, training=False):
    h = x
    for layer, norm in zip(self.convs, self.norms):
      h = layer(h, training=training)
      if norm is not None:
        h = norm(h, training=training)
      h = tf.nn.leaky_relu(h, alpha=self._slope)
    h = tf.reshape(h, [-1, self.feature_size])
    logits = tf.squeeze(self.logit_head(h, training=training), axis=-1)
    classes = (self.class_head(h, training=training) if self.class_head is not None
               else None)
    return logits, classes


@DISCRIMINATORS.register("dcgan")
def dcgan(config, input_shape, num_classes):
  """Widths `--model.discriminator_channels`, BatchNorm iff
  `--model.discriminator_batchnorm`, spectral normalisation iff
  `--model.spectral_norm`, weights by `--model.init`; a class head iff
  `num_classes` > 0."""
  if len(input_shape) != 3:
    raise ConfigError("--model.discriminator=dcgan takes images [height, width, "
                      f"channels]; the data's examples have shape {list(input_shape)}")
  if config.spectral_norm and config.discriminator_batchnorm:
    raise ConfigError("--model.spectral_norm=true needs "
                      "--model.discriminator_batchnorm=false (BatchNorm undoes the "
                      "Lipschitz bound of spectrally normalised layers; SNGAN's "
                      "discriminators have none)")
  return DCGANDiscriminator(input_shape, config.discriminator_channels, num_classes,
                            config.discriminator_batchnorm, config.spectral_norm,
                            config.init, config.leaky_relu_slope, name="discriminator")
