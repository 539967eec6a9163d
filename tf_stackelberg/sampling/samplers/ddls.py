"""`'ddls'`: DDLS, unadjusted Langevin dynamics on the latent energy.

`z <- z - (s / 2) grad E(z) + sqrt(s) xi`, with no accept/reject: the
chain samples `exp(-E)` only up to an `O(s)` bias. This is TFP's
`UncalibratedLangevin` with `compute_acceptance=False` (its default
volatility 1 gives exactly this update).

Reference: Tong Che et al. Your GAN is secretly an energy-based model and you
should use discriminator driven latent sampling. NeurIPS, 2020.
"""

import functools

import tensorflow_probability as tfp

from tf_stackelberg.sampling.energy import log_prob_from_energy
from tf_stackelberg.sampling.registry import SAMPLERS

__all__ = ['make_ddls_kernel']


def make_ddls_kernel(energy_fn, step_size=0.01):
  """Unadjusted Langevin on `exp(-E)` (`tfp.mcmc.UncalibratedLangevin`)."""
  return tfp.mcmc.UncalibratedLangevin(
      target_log_prob_fn=log_prob_from_energy(energy_fn), step_size=step_size,
      compute_acceptance=False)


@SAMPLERS.register('ddls')
def ddls(chains):
  """Final states of unadjusted Langevin chains with step `settings.step_size`.

  One evaluation of the energy and its gradient per chain and step (plus one
  per generator move in joint mode).
  """
  step_size = chains.settings.step_size
  return chains.final_states(
      functools.partial(make_ddls_kernel, step_size=step_size),
      step_size=step_size)
