"""`'mh'`: MH-GAN, independence Metropolis-Hastings with prior proposals.

Proposals `z' ~ p0` (the model's latent prior, independent of the current
state) are accepted with probability `min(1, exp(d_c(G(z')) - d_c(G(z))))`:
the Metropolis-Hastings rule for `pi ~ exp(-E) = p0 exp(d_c)` with proposal
`p0`. Proposals lie in the prior's support by construction, also for a
bounded prior.
It is `tfp.mcmc.MetropolisHastings` around `IndependenceProposal`, which
draws the proposal and reports the proposal-density correction
`log p0(z) - log p0(z')` as its `log_acceptance_correction`. Discriminator
rejection sampling is the rejection-sampling form of the same density-ratio
test.

References:
  Ryan Turner et al. Metropolis-Hastings generative adversarial networks.
  ICML, 2019.
  Samaneh Azadi et al. Discriminator rejection sampling. ICLR, 2019.
"""

import collections
import functools

import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.common import salts
from tf_stackelberg.models.latent_prior import get_latent_prior
from tf_stackelberg.sampling.diagnostics import barely_moved
from tf_stackelberg.sampling.energy import log_prob_from_energy
from tf_stackelberg.sampling.registry import register
from tf_stackelberg.sampling.registry import Sampler

__all__ = [
    'IndependenceProposal',
    'IndependenceProposalResults',
    'make_mh_kernel',
]


class IndependenceProposalResults(
    collections.namedtuple('IndependenceProposalResults', [
        'log_acceptance_correction',
        'target_log_prob',
        'seed',
    ])):
  """Results of `IndependenceProposal` (`[chains]` fields, and `seed`)."""
  __slots__ = ()


class IndependenceProposal(tfp.mcmc.TransitionKernel):
  """Proposes from the generator's prior; wrap in `MetropolisHastings`.

  For a state `z` the proposal is `z' ~ p0`, independent of `z`, and
  `log_acceptance_correction = log q(z) - log q(z') = log p0(z) - log p0(z')`,
  so that `MetropolisHastings` accepts with
  `min(1, pi(z') p0(z) / (pi(z) p0(z')))`; for `log pi = log p0 + d_c(G(z))`
  this is the discriminator-ratio test of MH-GAN.

  With `num_generators=K` the state is the list `[k, z]` (`k` int32
  `[chains]`) and the proposal is the sampling distribution of a
  `K`-generator model, `k' ~ Uniform{0..K-1}`, `z' ~ p0`; the uniform
  factor cancels in the correction. `target_log_prob_fn` then takes
  `(k, z)`.

  One forward evaluation of the target (no gradient) per step.
  """

  def __init__(self, target_log_prob_fn, num_generators=None, name=None,
               prior=None):
    """Creates the kernel.

    Args:
      target_log_prob_fn: callable `z -> [chains]` (or `(k, z) -> [chains]`
        with `num_generators`) log target density, up to a constant.
      num_generators: `None` for a state `z`, or the number `K >= 1` of
        generators for a joint state `[k, z]`.
      name: optional name prefixed to the ops.
      prior: the proposal `p0`, a `LatentPrior` or its name (default
        normal).
    """
    if num_generators is not None and num_generators < 1:
      raise ValueError('`num_generators` must be positive.')
    self._parameters = dict(target_log_prob_fn=target_log_prob_fn,
                            num_generators=num_generators, name=name,
                            prior=get_latent_prior(prior))

  @property
  def parameters(self):
    return self._parameters

  @property
  def target_log_prob_fn(self):
    return self._parameters['target_log_prob_fn']

  @property
  def num_generators(self):
    return self._parameters['num_generators']

  @property
  def name(self):
    return self._parameters['name']

  @property
  def prior(self):
    return self._parameters['prior']

  @property
  def is_calibrated(self):
    """`False`: a proposal, calibrated by `MetropolisHastings`."""
    return False

  def _split(self, state):
    if self.num_generators is None:
      return None, tf.convert_to_tensor(state)
    k, z = state
    return tf.convert_to_tensor(k, tf.int32), tf.convert_to_tensor(z)

  def _log_prob(self, k, z):
    if k is None:
      return self.target_log_prob_fn(z)
    return self.target_log_prob_fn(k, z)

  def one_step(self, current_state, previous_kernel_results, seed=None):
    """Draws the proposal and its target log-density and correction."""
    with tf.name_scope(self.name or 'independence_proposal_one_step'):
      seed = tfp.random.sanitize_seed(seed)
      z_seed, k_seed = tfp.random.split_seed(seed, n=2,
                                             salt=salts.INDEPENDENCE_PROPOSAL)
      k, z = self._split(current_state)
      proposed_z = self.prior.sample(tf.shape(z), z_seed, dtype=z.dtype)
      if k is None:
        proposed_state = proposed_z
        proposed_k = None
      else:
        proposed_k = tf.random.stateless_uniform(
            tf.shape(k), seed=k_seed, minval=0, maxval=self.num_generators,
            dtype=tf.int32)
        proposed_state = [proposed_k, proposed_z]
      correction = self.prior.log_prob(z) - self.prior.log_prob(proposed_z)
      return proposed_state, IndependenceProposalResults(
          log_acceptance_correction=correction,
          target_log_prob=self._log_prob(proposed_k, proposed_z),
          seed=seed)

  def bootstrap_results(self, init_state):
    """Results holding the target log-density of `init_state`."""
    with tf.name_scope(self.name or 'independence_proposal_bootstrap'):
      k, z = self._split(init_state)
      target_log_prob = self._log_prob(k, z)
      return IndependenceProposalResults(
          log_acceptance_correction=tf.zeros_like(target_log_prob),
          target_log_prob=target_log_prob,
          seed=tf.zeros([2], tf.int32))


def make_mh_kernel(energy_fn, num_generators=None, prior=None):
  """MH-GAN: `MetropolisHastings(IndependenceProposal(-E))` for `exp(-E)`.

  Args:
    energy_fn: `z -> [chains]`, or `(z, k) -> [chains]` with
      `num_generators`.
    num_generators: if given, the state is `[k, z]` and proposals draw `k`
      uniformly as well (see `IndependenceProposal`).
    prior: the latent prior `p0` the proposals are drawn from (the prior of
      the energy), a `LatentPrior` or its name (default normal).

  Returns:
    `tfp.mcmc.MetropolisHastings`.
  """
  if num_generators is None:
    proposal = IndependenceProposal(log_prob_from_energy(energy_fn),
                                    prior=prior)
  else:
    proposal = IndependenceProposal(lambda k, z: -energy_fn(z, k),
                                    num_generators=num_generators,
                                    prior=prior)
  return tfp.mcmc.MetropolisHastings(proposal)


def mh(chains):
  """Final states of MH-GAN chains; in joint mode `k` is proposed with `z`.

  One forward evaluation of the energy per chain and step, no gradient.
  """
  make_kernel = functools.partial(make_mh_kernel, prior=chains.model.prior)
  return chains.final_states(make_kernel, make_joint_kernel=make_kernel,
                             gradient=False)


register(Sampler(
    'mh', mh, gradient=False, proposes_generator=True,
    # No step to shorten: more proposals are the only remedy.
    health_checks=(barely_moved(
        'the prior proposals are almost all rejected; raise `steps`'),)))
