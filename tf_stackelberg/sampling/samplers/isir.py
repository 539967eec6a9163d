"""`'isir'`: iterated sampling-importance-resampling with prior proposals.

Each step draws `N = settings.isir_proposals` latents from the prior `p0`
(with a uniform generator index in joint mode) and resamples the chain's
next state among them and the current state by the weights
`exp(d_c(G(z)) / T)`: Ex2MCMC's global kernel, and MH-GAN's independence
sampler with `N` candidates per step (`isir.ImportanceResampling`). The
kernel leaves `exp(-E)` invariant exactly; the output is the chains' final
states, unweighted.

Cost: `N` forward evaluations per chain and step, plus one for the initial
states; no gradient. `budget.evaluations_per_chain` counts them, so that
`steps_for_budget('isir', B)` gives about `B / N` steps.

Reference: Sergey Samsonov et al. Local-global MCMC kernels: the best of
both worlds. NeurIPS, 2022 (i-SIR improved a DCGAN's FID within about 200
evaluations of G and D).
"""

from tf_stackelberg.sampling.diagnostics import barely_moved
from tf_stackelberg.sampling.energy import log_prob_from_energy
from tf_stackelberg.sampling.isir import ImportanceResampling
from tf_stackelberg.sampling.registry import register
from tf_stackelberg.sampling.registry import Sampler
from tf_stackelberg.sampling.settings import DEFAULTS

__all__ = ['make_isir_kernel']


def make_isir_kernel(energy_fn, num_generators=None,
                     num_proposals=DEFAULTS.isir_proposals, prior=None):
  """i-SIR on `exp(-E)` with `num_proposals` prior proposals per step.

  Args:
    energy_fn: `z -> [chains]`, or `(z, k) -> [chains]` with
      `num_generators`.
    num_generators: if given, the state is `[k, z]` and the proposals draw
      `k` uniformly as well.
    num_proposals: `N`.
    prior: the latent prior `p0` of the energy (a `LatentPrior` or its name).

  Returns:
    `isir.ImportanceResampling`.
  """
  if num_generators is None:
    target_log_prob_fn = log_prob_from_energy(energy_fn)
  else:
    def target_log_prob_fn(k, z):
      return -energy_fn(z, k)
  return ImportanceResampling(target_log_prob_fn, num_proposals,
                              num_generators=num_generators, prior=prior)


def proposals_per_step(settings):
  """`Sampler.evaluations_per_step` of `'isir'`: `settings.isir_proposals`."""
  return settings.isir_proposals


def isir(chains):
  """Final states of i-SIR chains; in joint mode `k` is proposed with `z`."""
  num_proposals = chains.settings.isir_proposals
  prior = chains.model.prior

  def make_kernel(energy_fn, num_generators=None):
    return make_isir_kernel(energy_fn, num_generators, num_proposals, prior)

  return chains.final_states(make_kernel, make_joint_kernel=make_kernel,
                             gradient=False,
                             evaluations_per_step=num_proposals)


register(Sampler(
    'isir', isir, gradient=False, proposes_generator=True,
    evaluations_per_step=proposals_per_step,
    health_checks=(barely_moved(
        'the prior proposals almost never outweigh the current states; raise '
        '`isir_proposals`'),)))
