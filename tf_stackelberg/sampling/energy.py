"""Latent-space energy of a trained GAN and discriminator calibration.

A generator ``G`` with latent prior ``p0`` (``N(0, I)`` or ``U[-1, 1]^D``, see
`tf_stackelberg.models.latent_prior`) and a discriminator whose logit ``d``
approximates ``log p_data(x) / p_G(x)`` define an energy on the latent space,

```none
E(z, k) = -log p0(z) - d_c(G_k(z)) / T,        d_c = a * d + b,
```

with the temperature ``T > 0`` of the discriminator term (1 by default, the
density-ratio correction itself; ``T < 1`` sharpens the target towards what
``D`` prefers, ``T > 1`` flattens it towards the prior).

whose Boltzmann density ``exp(-E)`` pushed through the generator corrects the
generator's samples toward the data distribution when ``d_c`` is accurate.
``-log p0`` keeps its normalising constant (``D/2 log 2 pi`` for a normal
latent of ``D`` numbers, ``D log 2`` for a uniform one), so energies are
comparable with the ranges quoted in the literature. A model whose generator
prior ``p(k)`` is not uniform (`tf_stackelberg.models.generator_prior`) adds
``-log p(k)`` to the energy, so that the joint target over ``(k, z)`` is
``p(k) p0(z) exp(d_c)``; for the uniform prior the term is a constant and is
left out.

Outside a bounded support the energy is ``+inf``: the prior term is infinite
there, while the generator is evaluated at the nearest point of the support
(``p0.clip(z)``), so that the critic and the gradient of the energy stay
finite. A Metropolis-Hastings move to such a point has acceptance ratio
``exp(-inf) = 0`` and is rejected (TFP's `MetropolisHastings` turns any
non-finite log acceptance ratio into ``-inf``); the chains start inside the
support, so the energy of a current state is always finite.

The GAN enters only through two callables, so this module does not depend on
any particular model class:

* ``generate_fn(z, k) -> x``: ``z`` float ``[B, latent_dim]``, ``k`` int32
  ``[B]`` (the generator index; single-generator models ignore it).
* ``logit_fn(x) -> [B]``: discriminator logits (a trailing axis of size one is
  accepted and squeezed).

`LatentModel` bundles them with the sizes of the latent space, the
calibration of the logit (see `calibration`), the prior and the temperature.
"""

import dataclasses
import math
from typing import Any, Callable, Optional, Tuple

import tensorflow as tf

from tf_stackelberg.models.latent_prior import get_latent_prior
from tf_stackelberg.models.latent_prior import LatentPrior
from tf_stackelberg.models.latent_prior import NormalPrior
from tf_stackelberg.models.latent_prior import standard_normal_log_prob

__all__ = [
    'LatentModel',
    'check_temperature',
    'log_prob_from_energy',
    'make_energy_fn',
    'standard_normal_log_prob',
]


def check_temperature(temperature):
  """`temperature` as a float; `ValueError` unless it is positive and finite."""
  temperature = float(temperature)
  if not (temperature > 0. and math.isfinite(temperature)):
    raise ValueError('`temperature` must be a positive finite number, got '
                     f'{temperature}.')
  return temperature


def make_energy_fn(generate_fn, logit_fn, calibration=None, name=None, *,
                   prior=None, temperature=1., generator_log_prior=None):
  """Builds `energy(z, k) = -log p0(z) - log p(k) - (a * logit_fn(generate_fn(z, k)) + b) / T`.

  Args:
    generate_fn: callable `(z, k) -> x` as described in the module docstring.
    logit_fn: callable `x -> logits` with `B` logits for a batch of `B`.
    calibration: optional pair `(a, b)` (e.g. from `calibration.calibrate`); the
      default `None` means `(1, 0)`, i.e. the raw logit.
    name: optional name scope for the ops.
    prior: the latent prior `p0`: a `LatentPrior` or its name (default
      normal). For a bounded prior `generate_fn` sees `p0.clip(z)` and the
      energy is `+inf` outside the support.
    temperature: `T > 0` dividing the calibrated logit (default 1: the
      energy of the density-ratio correction, computed without a division,
      so bit for bit the untempered energy).
    generator_log_prior: optional `log p(k)` of each generator (a sequence of
      `K` floats); the energy then adds `-log p(k)`. `None`: uniform, no term.

  Returns:
    `energy(z, k)`: `z` float `[B, latent_dim]`; `k` int `[B]` or a scalar
    (broadcast to every row). Returns the energies, shape `[B]`, dtype of `z`.
    The returned callable carries the calibration as attribute `calibration`,
    the prior as attribute `prior` and the temperature as `temperature`.

  Raises:
    ValueError: a temperature that is not positive and finite.
  """
  prior = get_latent_prior(prior)
  temperature = check_temperature(temperature)
  if calibration is None:
    scale, shift = 1., 0.
  else:
    scale, shift = calibration
  scale = float(scale)
  shift = float(shift)

  def energy(z, k):
    with tf.name_scope(name or 'latent_energy'):
      z = tf.convert_to_tensor(z)
      batch = tf.shape(z)[:1]
      k = tf.broadcast_to(tf.cast(k, tf.int32), batch)
      logits = logit_fn(generate_fn(prior.clip(z), k))
      logits = tf.reshape(tf.cast(logits, z.dtype), batch)
      critic = scale * logits + shift
      if temperature != 1.:
        critic = critic / tf.cast(temperature, critic.dtype)
      if generator_log_prior is not None:
        critic += tf.gather(tf.constant(generator_log_prior, z.dtype), k)
      return -prior.log_prob(z) - critic

  energy.calibration = (scale, shift)
  energy.prior = prior
  energy.temperature = temperature
  return energy


def log_prob_from_energy(energy_fn):
  """The log-density `z -> -energy_fn(z)` of `exp(-E)`, for TFP kernels."""
  def target_log_prob_fn(z):
    return -energy_fn(z)
  return target_log_prob_fn


@dataclasses.dataclass(frozen=True)
class LatentModel:
  """A trained GAN as the latent samplers see it.

  Attributes:
    generate_fn: callable `(z, k) -> x`, `z` float `[B, latent_dim]`, `k`
      int32 `[B]`.
    logit_fn: callable `x -> [B]` discriminator logits.
    latent_dim: dimension of `z`.
    num_generators: number `K` of generators (the range of `k`).
    calibration: optional `(a, b)` of the calibrated logit `a * d + b`;
      `None` uses the raw logit.
    dtype: float dtype of the latents.
    prior: the latent prior `p0` (`LatentPrior`, or its name), normal by
      default: the prior term of the energy, the chains' initial states and
      MH-GAN's proposals.
    temperature: `T > 0` of the discriminator term, `E = -log p0 - d_c / T`
      (default 1). `SamplerSettings.temperature` multiplies it for a run
      (`tempered`).
    generator_log_prior: optional `log p(k)` of the `K` generators (a tuple
      of floats), `None` for the uniform prior: the chains' initial `k` are
      drawn from it and the energy adds `-log p(k)`.
  """
  generate_fn: Callable[..., Any]
  logit_fn: Callable[..., Any]
  latent_dim: int
  num_generators: int = 1
  calibration: Optional[Tuple[float, float]] = None
  dtype: Any = tf.float32
  prior: LatentPrior = NormalPrior()
  temperature: float = 1.
  generator_log_prior: Optional[Tuple[float, ...]] = None

  def __post_init__(self):
    for name in ('latent_dim', 'num_generators'):
      if int(getattr(self, name)) < 1:
        raise ValueError(
            f'`{name}` must be positive, got {getattr(self, name)}.')
      object.__setattr__(self, name, int(getattr(self, name)))
    if self.calibration is not None:
      scale, shift = self.calibration
      object.__setattr__(self, 'calibration', (float(scale), float(shift)))
    object.__setattr__(self, 'dtype', tf.as_dtype(self.dtype))
    object.__setattr__(self, 'prior', get_latent_prior(self.prior))
    object.__setattr__(self, 'temperature',
                       check_temperature(self.temperature))
    if self.generator_log_prior is not None:
      log_prior = tuple(float(w) for w in self.generator_log_prior)
      if len(log_prior) != self.num_generators:
        raise ValueError(f'`generator_log_prior` needs {self.num_generators} '
                         f'entries, got {len(log_prior)}.')
      object.__setattr__(self, 'generator_log_prior', log_prior)

  def tempered(self, temperature):
    """This model with its temperature multiplied by `temperature`.

    `self` itself for `temperature == 1`, so that an untempered run uses
    the very same energy.
    """
    temperature = check_temperature(temperature)
    if temperature == 1.:
      return self
    return dataclasses.replace(self,
                               temperature=self.temperature * temperature)

  def energy_fn(self):
    """`energy(z, k)` of this model (`make_energy_fn`)."""
    return make_energy_fn(self.generate_fn, self.logit_fn, self.calibration,
                          prior=self.prior, temperature=self.temperature,
                          generator_log_prior=self.generator_log_prior)
