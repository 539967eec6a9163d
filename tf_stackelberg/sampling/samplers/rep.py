"""`'rep'`: REP-GAN, MALA on the latent energy with a fixed step.

On a bounded prior (`U[-1, 1]^D`) a proposal outside the box has energy
`+inf` (`energy.make_energy_fn`) and log acceptance ratio `-inf`, so it is
rejected and the chain stays in the box; the drift there is finite, as the
generator is evaluated at the clipped point.

Reference: Yifei Wang et al. Reparameterized sampling for generative
adversarial networks. ECML PKDD, 2021 (640 steps with `s = 0.01`).
"""

import functools

import tensorflow_probability as tfp

from tf_stackelberg.sampling.diagnostics import barely_moved
from tf_stackelberg.sampling.diagnostics import diverged
from tf_stackelberg.sampling.energy import log_prob_from_energy
from tf_stackelberg.sampling.registry import register
from tf_stackelberg.sampling.registry import Sampler
from tf_stackelberg.sampling.settings import DEFAULTS

__all__ = ['make_rep_kernel']


def make_rep_kernel(energy_fn, step_size=DEFAULTS.step_size):
  """MALA on `exp(-E)`: `tfp.mcmc.MetropolisAdjustedLangevinAlgorithm`.

  The proposal is `z' = z - (s / 2) grad E(z) + sqrt(s) xi`, `xi ~ N(0, I)`,
  accepted by the Metropolis-Hastings rule.
  """
  return tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(
      target_log_prob_fn=log_prob_from_energy(energy_fn), step_size=step_size)


def rep(chains):
  """Final states of MALA chains with the fixed step `settings.step_size`.

  One evaluation of the energy and its gradient per chain and step (plus one
  per generator move in joint mode).
  """
  step_size = chains.settings.step_size
  return chains.final_states(
      functools.partial(make_rep_kernel, step_size=step_size),
      step_size=step_size)


register(Sampler('rep', rep, health_checks=(
    diverged, barely_moved('lower `step_size`'))))
