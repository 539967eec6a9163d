"""The latent prior p0 that the generators' inputs are drawn from.

`--model.latent_distribution` names it:

| name | p0 | log p0(z) for z in R^D |
|---|---|---|
| `normal` (default) | N(0, I) | -D/2 log(2 pi) - norm(z)^2 / 2 |
| `uniform` | U[-1, 1]^D | -D log 2 inside the box, -inf outside |

(The CIFAR-10 setting of the Stackelberg GAN paper draws 100 uniform latents.)

A `LatentPrior` draws latents with a stateless seed (`sample`) and gives their log
density with its normalising constant (`log_prob`), so that the latent energy of
docs/design.md section 5 keeps its absolute level. Training, `StackelbergGAN.sample`,
the exported `sample` signature and the latent samplers (initial states, the prior term
of the energy, MH-GAN's proposals) all draw from, or evaluate, the same object.

Three maps serve the samplers on a bounded support: `contains(z)` (the rows inside the
support), `clip(z)` (the nearest point of the support, where the energy evaluates the
generator for points outside it, so that the generator's output and gradient stay finite
while the prior term makes the energy infinite) and `reflect(z)` (folds a point into the
support by mirror reflection at its faces, for unadjusted Langevin). For an unbounded
prior `clip` and `reflect` return their argument itself, so that with the normal prior
every draw and every energy is computed exactly as by code that knows no support.

Example:
  prior = get_latent_prior("uniform")
  z = prior.sample([64, 100], tf.constant([0, 1], tf.int64))  # in [-1, 1)
  prior.log_prob(z)  # [64], each -100 log 2
"""

import math

import numpy as np
import tensorflow as tf

from tf_stackelberg.common.registry import Registry

__all__ = [
    "LATENT_PRIORS",
    "LatentPrior",
    "NormalPrior",
    "UniformPrior",
    "get_latent_prior",
    "standard_normal_log_prob",
]

LATENT_PRIORS = Registry("latent distribution", flag="--model.latent_distribution")

_HALF_LOG_TWO_PI = 0.5 * math.log(2. * math.pi)


def _rows(z):
  """`z` `[B, ...]` as `[B, D]`."""
  z = tf.convert_to_tensor(z)
  return tf.reshape(z, [tf.shape(z)[0], -1])


def standard_normal_log_prob(z):
  """Log density of N(0, I) at each row of `z` (all non-leading axes).

  Args:
    z: float `Tensor` of shape `[B, ...]`.

  Returns:
    `Tensor` of shape `[B]`, including the normalising constant.
  """
  z = tf.convert_to_tensor(z)
  flat = _rows(z)
  dim = tf.cast(tf.shape(flat)[-1], z.dtype)
  return (-0.5 * tf.reduce_sum(tf.square(flat), axis=-1)
          - dim * tf.constant(_HALF_LOG_TWO_PI, z.dtype))


class LatentPrior:
  """A latent distribution p0 on R^D (D: all non-leading axes of a batch).

  Attributes:
    name: the name `--model.latent_distribution` selects it by.
    bounds: `(low, high)` of a box support `[low, high]^D`, or None for R^D.
  """

  name = ""
  bounds = None

  def sample(self, shape, seed, dtype=tf.float32):
    """Latents of `shape` drawn with the stateless `seed` (int32 or int64 `[2]`)."""
    raise NotImplementedError

  def log_prob(self, z):
    """`[B]` log densities of the rows of `z` `[B, ...]`, normalising constant included."""
    raise NotImplementedError

  def contains(self, z):
    """bool `[B]`: whether each row of `z` lies in the support."""
    if self.bounds is None:
      return tf.reduce_all(tf.math.is_finite(_rows(z)), axis=-1)
    low, high = self.bounds
    flat = _rows(z)
    return tf.reduce_all((flat >= low) & (flat <= high), axis=-1)

  def clip(self, z):
    """The nearest point of the support, per coordinate (`z` itself if unbounded)."""
    if self.bounds is None:
      return z
    return tf.clip_by_value(z, *self.bounds)

  def reflect(self, z):
    """`z` folded into the support by reflection at its faces (`z` if unbounded).

    Per coordinate, a point at distance `u` beyond a face is mirrored to distance `u`
    inside it, repeatedly for steps longer than the box: a triangle wave of period
    `2 (high - low)`.
    """
    if self.bounds is None:
      return z
    low, high = self.bounds
    z = tf.convert_to_tensor(z)
    width = tf.constant(high - low, z.dtype)
    offset = tf.math.floormod(z - low, 2. * width)
    folded = tf.where(offset > width, 2. * width - offset, offset) + low
    return tf.clip_by_value(folded, low, high)  # guards the rounding of floormod

  def __eq__(self, other):
    return type(self) is type(other)

  def __hash__(self):
    return hash(type(self))

  def __repr__(self):
    return f"{type(self).__name__}()"


@LATENT_PRIORS.register("normal")
class NormalPrior(LatentPrior):
  """p0 = N(0, I), unbounded."""

  name = "normal"

  def sample(self, shape, seed, dtype=tf.float32):
    return tf.random.stateless_normal(shape, seed, dtype=dtype)

  def log_prob(self, z):
    return standard_normal_log_prob(z)


@LATENT_PRIORS.register("uniform")
class UniformPrior(LatentPrior):
  """p0 = U[-1, 1]^D: density 2^-D on the closed box, 0 outside it.

  `sample` draws from the half-open `[-1, 1)` of `tf.random.stateless_uniform`.
  """

  name = "uniform"
  bounds = (-1.0, 1.0)

  def sample(self, shape, seed, dtype=tf.float32):
    low, high = self.bounds
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high, dtype=dtype)

  def log_prob(self, z):
    z = tf.convert_to_tensor(z)
    flat = _rows(z)
    low, high = self.bounds
    dim = tf.cast(tf.shape(flat)[-1], z.dtype)
    inside = -dim * tf.constant(math.log(high - low), z.dtype)
    # `0 * sum(z)` gives the density a zero gradient in z rather than none, as for a
    # prior whose log density depends on z; it is masked where z is not finite.
    inside = inside + 0. * tf.reduce_sum(flat, axis=-1)
    return tf.where(self.contains(z), inside, tf.constant(-np.inf, z.dtype))


def get_latent_prior(prior=None):
  """The `LatentPrior` named `prior` (None: normal); a `LatentPrior` is returned as is.

  Raises:
    ConfigError: for an unknown name, naming `--model.latent_distribution` and the
      known names.
  """
  if prior is None:
    prior = "normal"
  if isinstance(prior, LatentPrior):
    return prior
  return LATENT_PRIORS.get(prior)()
