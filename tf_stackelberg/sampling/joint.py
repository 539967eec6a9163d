"""Joint sampling of the generator index and the latent, `(k, z)`.

With `K` generators the target is `pi(k, z) ~ exp(-E(z, k))` over the pair.
`JointGeneratorKernel` alternates two Metropolis-within-Gibbs moves:

1. a generator move: propose `k'` uniformly among the other `K - 1`
   generators (a symmetric proposal) and accept with probability
   `min(1, pi_w(k', z) / pi_w(k, z))`, where `pi_w` is the working target of
   the latent kernel (for `WangLandau` this includes the bias terms
   `theta[J(E)]`); chains can thereby leave a generator that makes poor
   samples;
2. a latent move `z | k` by any kernel built from the energy at the current
   `k` through `make_kernel_fn(energy_fn_of_z)`.

The working log-density at the proposed generator is read from the latent
kernel's own results, recomputed at `(z, k')` (`refresh_results` if the
kernel has it, else `bootstrap_results`), so the comparison always uses the
kernel's exact target; for chains that accept, these recomputed results
(including the cached gradient) replace the old ones, and the latent move
needs no further evaluation. A generator move therefore costs one
evaluation of the energy and its gradient.

`joint_generator_step` is the same generator move as a plain function of a
log-density `log_prob_fn(z, k)`.
"""

import collections

import tensorflow as tf
import tensorflow_probability as tfp

__all__ = [
    'JointGeneratorKernel',
    'JointGeneratorResults',
    'joint_generator_step',
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


def _mh_choice(current_log_prob, proposed_log_prob, seed):
  log_accept_ratio = proposed_log_prob - current_log_prob
  log_accept_ratio = tf.where(
      tf.math.is_nan(log_accept_ratio),
      tf.cast(-float('inf'), log_accept_ratio.dtype), log_accept_ratio)
  log_uniform = tf.math.log(tf.random.stateless_uniform(
      tf.shape(log_accept_ratio), seed=seed, dtype=log_accept_ratio.dtype))
  return log_uniform < log_accept_ratio, log_accept_ratio


def joint_generator_step(log_prob_fn, z, k, num_generators, seed,
                         current_log_prob=None):
  """One Metropolis-Hastings move of the generator index at fixed `z`.

  Args:
    log_prob_fn: callable `(z, k) -> [chains]` log target density, e.g.
      `lambda z, k: -energy_fn(z, k)`, possibly with bias terms.
    z: float `[chains, latent_dim]`.
    k: int32 `[chains]`.
    num_generators: Python int `K`.
    seed: stateless seed.
    current_log_prob: optional `log_prob_fn(z, k)` if already known.

  Returns:
    `(new_k, new_log_prob, is_accepted, log_accept_ratio)`, each `[chains]`.
  """
  k = tf.convert_to_tensor(k, tf.int32)
  if current_log_prob is None:
    current_log_prob = log_prob_fn(z, k)
  if num_generators < 2:
    return (k, current_log_prob, tf.zeros_like(k, dtype=tf.bool),
            tf.zeros_like(current_log_prob))
  proposal_seed, accept_seed = tfp.random.split_seed(
      seed, n=2, salt='joint_generator_step')
  proposed_k = propose_generator(k, num_generators, proposal_seed)
  proposed_log_prob = log_prob_fn(z, proposed_k)
  is_accepted, log_accept_ratio = _mh_choice(current_log_prob,
                                             proposed_log_prob, accept_seed)
  return (tf.where(is_accepted, proposed_k, k),
          tf.where(is_accepted, proposed_log_prob, current_log_prob),
          is_accepted, log_accept_ratio)


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


def _working_log_prob(results):
  """The latent kernel's cached log-density at its current state."""
  while results is not None:
    if hasattr(results, 'target_log_prob'):
      return results.target_log_prob
    if hasattr(results, 'accepted_results'):
      results = results.accepted_results
    elif hasattr(results, 'inner_results'):
      results = results.inner_results
    else:
      break
  raise ValueError('The latent kernel results have no `target_log_prob`.')


def _select_chains(is_accepted, new, old):
  """Per-chain choice between two results structures of the same kernel.

  Leaves whose leading axis is the chain axis are selected chain by chain;
  other leaves (counters, shared bias, seeds) are taken from `old` (they do
  not depend on the state). A state-independent leaf whose leading axis
  happens to equal the number of chains (a shared bias with as many bins as
  chains) is the same in both structures, since refreshing keeps it, so the
  selection leaves it unchanged; only seed fields kept for diagnostics can
  then mix.
  """
  num_chains = is_accepted.shape[0]
  if num_chains is None:
    raise ValueError('The number of chains must be statically known.')

  def select(n, o):
    if o is None:
      return o
    o = tf.convert_to_tensor(o)
    n = tf.convert_to_tensor(n)
    if o.shape.rank is None or o.shape.rank == 0 or o.shape[0] != num_chains:
      return o
    if o.shape != n.shape:
      return o
    mask = tf.reshape(is_accepted,
                      [num_chains] + [1] * (o.shape.rank - 1))
    return tf.where(mask, n, o)

  return tf.nest.map_structure(select, new, old)


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
        MALA/HMC/RWM, the kernels of this package, `WangLandau`).
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

  @staticmethod
  def _refresh(kernel, z, results):
    refresh = getattr(kernel, 'refresh_results', None)
    if refresh is not None:
      return refresh(z, results)
    return kernel.bootstrap_results(z)

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
      proposal_seed, accept_seed, latent_seed = tfp.random.split_seed(
          seed, n=3, salt='joint_generator')
      k, z = current_state
      k = tf.convert_to_tensor(k, tf.int32)
      z = tf.convert_to_tensor(z)
      previous = previous_kernel_results
      step = previous.step + 1
      inner_results = previous.inner_results
      no_move = (tf.zeros_like(k, dtype=tf.bool),
                 tf.zeros_like(_working_log_prob(inner_results)), k)

      if self.num_generators > 1:
        def generator_move():
          proposed_k = propose_generator(k, self.num_generators,
                                         proposal_seed)
          proposed_results = self._refresh(self.latent_kernel(proposed_k), z,
                                           inner_results)
          is_accepted, log_accept_ratio = _mh_choice(
              _working_log_prob(inner_results),
              _working_log_prob(proposed_results), accept_seed)
          return (tf.where(is_accepted, proposed_k, k),
                  _select_chains(is_accepted, proposed_results,
                                 inner_results),
                  (is_accepted, log_accept_ratio, proposed_k))

        if self.generator_move_every == 1:
          k, inner_results, move_info = generator_move()
        else:
          k, inner_results, move_info = tf.cond(
              tf.equal((step - 1) % self.generator_move_every, 0),
              generator_move, lambda: (k, inner_results, no_move))
      else:
        move_info = no_move

      z, inner_results = self.latent_kernel(k).one_step(
          z, inner_results, seed=latent_seed)
      is_accepted, log_accept_ratio, proposed_k = move_info
      return [k, z], JointGeneratorResults(
          inner_results=inner_results,
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
