"""Joint sampling of the generator index and the latent, `(k, z)`.

With `K` generators the target is `pi(k, z) ~ exp(-E(z, k))` over the pair.
A non-uniform generator prior `p(k)` is part of the energy (`-log p(k)`,
`energy.make_energy_fn`), so the symmetric proposal below needs no correction
for it (docs/design.md section 14.6).
`JointGeneratorKernel` alternates two Metropolis-within-Gibbs moves:

1. a generator move: `tfp.mcmc.MetropolisHastings` around
   `GeneratorProposal`, which proposes `k'` uniformly among the other `K - 1`
   generators (a symmetric proposal, so `log_acceptance_correction = 0`) and
   reports the working log-density `log pi_w(k', z)` of the latent kernel (for
   `WangLandau` this includes the bias `theta[J(E)]`); the move is accepted
   with probability `min(1, pi_w(k', z) / pi_w(k, z))`, and chains can thereby
   leave a generator that makes poor samples;
2. a latent move `z | k` by any kernel built from the energy at the current
   `k` through `make_kernel_fn(energy_fn_of_z)`.

The working log-density at the proposed generator is read from the latent
kernel's own results, recomputed at `(z, k')` (`refresh_results` if the
kernel has it, else `bootstrap_results`), so the comparison always uses the
kernel's exact target; `MetropolisHastings` keeps, chain by chain, either these
recomputed results (including the cached gradient) or the old ones, and the
latent move needs no further evaluation. A generator move therefore costs one
evaluation of the energy and its gradient.

The accept/reject step is TFP's, the same as for every other
Metropolis-Hastings move of this package (MH-GAN's independence sampler, MALA).
Two details make the latent kernel's results fit `MetropolisHastings`, which
selects every field of the results chain by chain: fields that do not depend
on the state (a shared bias, counters, the step size) are passed on unchanged
from the current results, so that the selection leaves them alone, and the
`seed` fields are stripped from the current results as TFP strips them from
proposed ones.
"""

import collections

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.mcmc import metropolis_hastings
from tensorflow_probability.python.mcmc.internal import util as mcmc_util

from tf_stackelberg.common import salts
from tf_stackelberg.sampling.unnest import get_outermost

__all__ = [
    'GeneratorProposal',
    'GeneratorProposalResults',
    'JointGeneratorKernel',
    'JointGeneratorResults',
    'propose_generator',
]


def propose_generator(k, num_generators, seed):
  """Uniform proposal among the `num_generators - 1` other indices.

  Args:
    k: int32 `[chains]` current indices.
    num_generators: Python int `K >= 2`.
    seed: stateless seed.

  Returns:
    int32 `[chains]` proposals, never equal to `k`.
  """
  k = tf.convert_to_tensor(k, tf.int32)
  shift = tf.random.stateless_uniform(
      tf.shape(k), seed=tfp.random.sanitize_seed(seed), minval=1,
      maxval=num_generators, dtype=tf.int32)
  return tf.math.floormod(k + shift, num_generators)


def _working_log_prob(results):
  """The latent kernel's cached log-density at its current state."""
  value = get_outermost(results, 'target_log_prob')
  if value is None:
    raise ValueError('The latent kernel results have no `target_log_prob`.')
  return value


def _share_state_independent(proposed, current, chain_dim):
  """`proposed` with every field that is not per chain taken from `current`.

  A field is per chain when its static leading dimension is the chains'
  (`chain_dim`, `None` when the number of chains is only known at run time).
  The other fields (a shared bias, counters, the step size, seeds) do not
  depend on the state; refreshing keeps them, and passing the current
  objects on lets `MetropolisHastings` skip them in its per-chain selection.
  A state-independent field whose leading dimension happens to equal a static
  number of chains (a shared bias with as many bins as chains) is the same in
  both structures, since refreshing keeps it, so selecting it changes
  nothing.
  """
  def pick(p, c):
    if p is c:
      return c
    shape = getattr(p, 'shape', None)
    if (shape is None or shape.rank in (None, 0) or
        getattr(c, 'shape', None) != shape or shape[0] != chain_dim):
      return c
    return p

  return tf.nest.map_structure(pick, proposed, current)


class GeneratorProposalResults(
    collections.namedtuple('GeneratorProposalResults', [
        'log_acceptance_correction',
        'target_log_prob',
        'latent_results',
        'seed',
    ])):
  """Results of `GeneratorProposal`.

  Attributes:
    log_acceptance_correction: float `[chains]`, zero (symmetric proposal).
    target_log_prob: float `[chains]`, the latent kernel's working
      log-density at the state.
    latent_results: the latent kernel's results at the state.
    seed: int32 `[2]`, seed of the last proposal.
  """
  __slots__ = ()


class GeneratorProposal(tfp.mcmc.TransitionKernel):
  """Proposes another generator index at fixed `z`, for `MetropolisHastings`.

  The state is `[k, z]`. The proposal `k'` is uniform among the other
  generators, and the results carry the latent kernel's results recomputed at
  `(z, k')`, whose `target_log_prob` is the working log-density of the latent
  kernel at the proposal. Example:

  ```python
  move = tfp.mcmc.MetropolisHastings(GeneratorProposal(
      energy_fn, num_generators=4,
      make_kernel_fn=lambda e: tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(
          lambda z: -e(z), step_size=0.1)))
  ```
  """

  def __init__(self, energy_fn, num_generators, make_kernel_fn, name=None):
    """Creates the kernel.

    Args:
      energy_fn: callable `(z, k) -> [chains]` energies.
      num_generators: Python int `K >= 2`.
      make_kernel_fn: callable taking an energy `z -> [chains]` (for fixed
        `k`) and returning the latent `TransitionKernel`, whose results
        expose its working `target_log_prob`.
      name: optional name prefixed to the ops.
    """
    if num_generators < 2:
      raise ValueError('A generator proposal needs `num_generators >= 2`.')
    self._parameters = dict(energy_fn=energy_fn, num_generators=num_generators,
                            make_kernel_fn=make_kernel_fn, name=name)

  @property
  def parameters(self):
    return self._parameters

  @property
  def energy_fn(self):
    return self._parameters['energy_fn']

  @property
  def num_generators(self):
    return self._parameters['num_generators']

  @property
  def make_kernel_fn(self):
    return self._parameters['make_kernel_fn']

  @property
  def name(self):
    return self._parameters['name']

  @property
  def is_calibrated(self):
    """`False`: a proposal, calibrated by `MetropolisHastings`."""
    return False

  def latent_kernel(self, k):
    """The latent kernel for generator indices `k` (`[chains]`)."""
    energy_fn = self.energy_fn
    return self.make_kernel_fn(lambda z: energy_fn(z, k))

  def latent_results_at(self, k, z, results):
    """The latent kernel's results at `(z, k)`, keeping its adaptive state."""
    kernel = self.latent_kernel(k)
    refresh = getattr(kernel, 'refresh_results', None)
    if refresh is not None:
      return refresh(z, results)
    return kernel.bootstrap_results(z)

  def one_step(self, current_state, previous_kernel_results, seed=None):
    """Proposes `[k', z]` and reports the working log-density there."""
    with tf.name_scope(self.name or 'generator_proposal_one_step'):
      seed = tfp.random.sanitize_seed(seed)
      k, z = current_state
      k = tf.convert_to_tensor(k, tf.int32)
      current = previous_kernel_results.latent_results
      proposed_k = propose_generator(k, self.num_generators, seed)
      proposed = mcmc_util.strip_seeds(
          self.latent_results_at(proposed_k, z, current))
      proposed = _share_state_independent(
          proposed, mcmc_util.strip_seeds(current), k.shape[0])
      target_log_prob = _working_log_prob(proposed)
      return [proposed_k, z], GeneratorProposalResults(
          log_acceptance_correction=tf.zeros_like(target_log_prob),
          target_log_prob=target_log_prob,
          latent_results=proposed,
          seed=seed)

  def bootstrap_results(self, init_state):
    """Results holding the latent kernel's bootstrap at `init_state`."""
    with tf.name_scope(self.name or 'generator_proposal_bootstrap_results'):
      k, z = init_state
      latent = self.latent_kernel(tf.convert_to_tensor(k, tf.int32)
                                  ).bootstrap_results(z)
      return _proposal_results(latent)


def _proposal_results(latent_results):
  target_log_prob = _working_log_prob(latent_results)
  return GeneratorProposalResults(
      log_acceptance_correction=tf.zeros_like(target_log_prob),
      target_log_prob=target_log_prob,
      latent_results=latent_results,
      seed=tf.zeros([2], tf.int32))


def _metropolis_hastings_results(state, latent_results):
  """`MetropolisHastings` results of the generator move at the current state.

  The same as `MetropolisHastings.bootstrap_results` would return, built from
  the latent results already at hand instead of a new evaluation; a step of
  `MetropolisHastings` reads only their `accepted_results`.
  """
  proposal_results = _proposal_results(latent_results)
  target_log_prob = proposal_results.target_log_prob
  return metropolis_hastings.MetropolisHastingsKernelResults(
      accepted_results=mcmc_util.strip_seeds(proposal_results),
      is_accepted=tf.ones_like(target_log_prob, dtype=tf.bool),
      log_accept_ratio=tf.zeros_like(target_log_prob),
      proposed_state=state,
      proposed_results=proposal_results,
      extra=[],
      seed=tf.zeros([2], tf.int32))


class JointGeneratorResults(
    collections.namedtuple('JointGeneratorResults', [
        'inner_results',
        'generator_is_accepted',
        'generator_log_accept_ratio',
        'proposed_generator',
        'step',
        'seed',
    ])):
  """Results of `JointGeneratorKernel`.

  Attributes:
    inner_results: results of the latent kernel (for the current `k`).
    generator_is_accepted: bool `[chains]`, outcome of the last generator
      move (all `False` on steps without one).
    generator_log_accept_ratio: float `[chains]`.
    proposed_generator: int32 `[chains]`, last proposed index.
    step: int32 scalar, number of transitions made.
    seed: int32 `[2]`, seed of the last step.
  """
  __slots__ = ()


class JointGeneratorKernel(tfp.mcmc.TransitionKernel):
  """Gibbs-style alternation of generator moves and latent moves.

  The state is the list `[k, z]` (`k` int32 `[chains]`, `z` float
  `[chains, latent_dim]`). Example with Wang-Landau on the latent:

  ```python
  kernel = JointGeneratorKernel(
      energy_fn, num_generators=K,
      make_kernel_fn=lambda e: WangLandau(e, 130., 210., num_bins=50))
  ```
  """

  def __init__(self, energy_fn, num_generators, make_kernel_fn,
               generator_move_every=1, name=None):
    """Creates the kernel.

    Args:
      energy_fn: callable `(z, k) -> [chains]` energies.
      num_generators: Python int `K`.
      make_kernel_fn: callable taking an energy `z -> [chains]` (for fixed
        `k`) and returning a `TransitionKernel` over `z`; its results must
        expose the working `target_log_prob` of the current state (TFP's
        MALA/HMC/RWM, `WangLandau`).
      generator_move_every: a generator move is made on every this-many-th
        step (1: every step); the other steps only move `z`.
      name: optional name prefixed to the ops.
    """
    if num_generators < 1:
      raise ValueError('`num_generators` must be positive.')
    if generator_move_every < 1:
      raise ValueError('`generator_move_every` must be positive.')
    self._parameters = dict(
        energy_fn=energy_fn,
        num_generators=num_generators,
        make_kernel_fn=make_kernel_fn,
        generator_move_every=generator_move_every,
        name=name)

  @property
  def parameters(self):
    return self._parameters

  @property
  def energy_fn(self):
    return self._parameters['energy_fn']

  @property
  def num_generators(self):
    return self._parameters['num_generators']

  @property
  def make_kernel_fn(self):
    return self._parameters['make_kernel_fn']

  @property
  def generator_move_every(self):
    return self._parameters['generator_move_every']

  @property
  def name(self):
    return self._parameters['name']

  @property
  def is_calibrated(self):
    """Calibrated exactly when the latent kernel is."""
    probe = self.make_kernel_fn(lambda z: tf.zeros(tf.shape(z)[:1]))
    return probe.is_calibrated

  def latent_kernel(self, k):
    """The latent kernel for generator indices `k` (`[chains]`)."""
    energy_fn = self.energy_fn
    return self.make_kernel_fn(lambda z: energy_fn(z, k))

  def generator_move(self):
    """The generator move: `MetropolisHastings(GeneratorProposal(...))`."""
    return tfp.mcmc.MetropolisHastings(GeneratorProposal(
        self.energy_fn, self.num_generators, self.make_kernel_fn))

  def one_step(self, current_state, previous_kernel_results, seed=None):
    """A generator move (on the scheduled steps), then a latent move.

    Args:
      current_state: `[k, z]`, `k` int32 `[chains]`.
      previous_kernel_results: `JointGeneratorResults`.
      seed: stateless seed.

    Returns:
      `([k, z], JointGeneratorResults)`.
    """
    with tf.name_scope(self.name or 'joint_generator_one_step'):
      seed = tfp.random.sanitize_seed(seed)
      move_seed, latent_seed = tfp.random.split_seed(
          seed, n=2, salt=salts.JOINT_GENERATOR)
      k, z = current_state
      k = tf.convert_to_tensor(k, tf.int32)
      z = tf.convert_to_tensor(z)
      previous = previous_kernel_results
      step = previous.step + 1
      latent = previous.inner_results
      tlp = _working_log_prob(latent)
      no_move = (tf.zeros_like(k, dtype=tf.bool), tf.zeros_like(tlp), k)

      if self.num_generators > 1:
        def generator_move():
          [new_k, _], results = self.generator_move().one_step(
              [k, z], _metropolis_hastings_results([k, z], latent),
              seed=move_seed)
          return (new_k, results.accepted_results.latent_results,
                  (results.is_accepted, results.log_accept_ratio,
                   results.proposed_state[0]))

        def skip():
          return k, mcmc_util.strip_seeds(latent), no_move

        if self.generator_move_every == 1:
          k, latent, move_info = generator_move()
        else:
          k, latent, move_info = tf.cond(
              tf.equal((step - 1) % self.generator_move_every, 0),
              generator_move, skip)
      else:
        move_info = no_move

      z, latent = self.latent_kernel(k).one_step(z, latent, seed=latent_seed)
      is_accepted, log_accept_ratio, proposed_k = move_info
      return [k, z], JointGeneratorResults(
          inner_results=latent,
          generator_is_accepted=is_accepted,
          generator_log_accept_ratio=log_accept_ratio,
          proposed_generator=proposed_k,
          step=step,
          seed=seed)

  def bootstrap_results(self, init_state):
    """Initial `JointGeneratorResults` for `init_state = [k, z]`."""
    with tf.name_scope(self.name or 'joint_generator_bootstrap_results'):
      k, z = init_state
      k = tf.convert_to_tensor(k, tf.int32)
      inner_results = self.latent_kernel(k).bootstrap_results(z)
      tlp = _working_log_prob(inner_results)
      return JointGeneratorResults(
          inner_results=inner_results,
          generator_is_accepted=tf.zeros_like(k, dtype=tf.bool),
          generator_log_accept_ratio=tf.zeros_like(tlp),
          proposed_generator=k,
          step=tf.zeros([], tf.int32),
          seed=tf.zeros([2], tf.int32))
