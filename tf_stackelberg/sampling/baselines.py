"""Baseline latent samplers sharing the energy `E(z) = -log p0(z) - d_c(G(z))`.

* MH-GAN: an independence sampler, proposals `z' ~ p0 = N(0, I)` accepted
  with probability `min(1, exp(d_c(G(z')) - d_c(G(z))))`, which is the
  Metropolis-Hastings rule for `pi ~ exp(-E)` with proposal `p0`
  (`IndependenceMetropolis`; Turner et al., 2019). Discriminator rejection
  sampling (Azadi et al., 2019) is the rejection-sampling form of the same
  density-ratio test.
* DDLS: unadjusted Langevin dynamics
  `z <- z - (s / 2) grad E(z) + sqrt(s) xi`, no accept/reject
  (`UnadjustedLangevin`; Che et al., 2020); it samples `exp(-E)` only up to
  an `O(s)` bias.
* REP-GAN: the same Langevin proposal with a Metropolis-Hastings correction,
  i.e. MALA on `E` (`tfp.mcmc.MetropolisAdjustedLangevinAlgorithm`; Wang et
  al., 2021); the reference setting is 640 steps with `s = 0.01`.

The `make_*_kernel(energy_fn, ...)` factories take an energy `z -> [chains]`
and return a kernel whose target log-density is `-E`.

References:
  Ryan Turner et al. Metropolis-Hastings generative adversarial networks.
  ICML, 2019.
  Samaneh Azadi et al. Discriminator rejection sampling. ICLR, 2019.
  Tong Che et al. Your GAN is secretly an energy-based model and you should
  use discriminator driven latent sampling. NeurIPS, 2020.
  Yifei Wang et al. Reparameterized sampling for generative adversarial
  networks. ECML PKDD, 2021.
"""

import collections

import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.sampling.energy import standard_normal_log_prob

__all__ = [
    'IndependenceMetropolis',
    'IndependenceMetropolisResults',
    'UnadjustedLangevin',
    'UnadjustedLangevinResults',
    'make_ddls_kernel',
    'make_mh_kernel',
    'make_rep_kernel',
]


class IndependenceMetropolisResults(
    collections.namedtuple('IndependenceMetropolisResults', [
        'target_log_prob',
        'log_accept_ratio',
        'is_accepted',
        'proposed_state',
        'seed',
    ])):
  """Results of `IndependenceMetropolis` (per-chain `[chains]` fields)."""
  __slots__ = ()


class IndependenceMetropolis(tfp.mcmc.TransitionKernel):
  """Metropolis-Hastings with proposals drawn from the generator's prior.

  For a target `log pi(z) = -E(z) = log p0(z) + d_c(G(z))` and proposals
  `z' ~ p0 = N(0, I)` independent of the current state, the log acceptance
  ratio `[log pi(z') - log p0(z')] - [log pi(z) - log p0(z)]` reduces to
  `d_c(G(z')) - d_c(G(z))`: the discriminator-ratio test of MH-GAN
  (Turner et al., 2019), the Markov-chain form of discriminator rejection
  sampling (Azadi et al., 2019).

  With `num_generators=K` the state is the list `[k, z]` (`k` int32
  `[chains]`) and the proposal is the sampling distribution of a
  `K`-generator model, `k' ~ Uniform{0..K-1}`, `z' ~ N(0, I)`; the uniform
  factor cancels, so the test is still the discriminator ratio, now between
  `G_k'(z')` and `G_k(z)`. `target_log_prob_fn` then takes `(k, z)`.

  One forward evaluation of the target (no gradient) per step.
  """

  def __init__(self, target_log_prob_fn, num_generators=None, name=None):
    """Creates the kernel.

    Args:
      target_log_prob_fn: callable `z -> [chains]` (or `(k, z) -> [chains]`
        with `num_generators`) log target density, up to a constant.
      num_generators: `None` for a state `z`, or the number `K >= 1` of
        generators for a joint state `[k, z]`.
      name: optional name prefixed to the ops.
    """
    if num_generators is not None and num_generators < 1:
      raise ValueError('`num_generators` must be positive.')
    self._parameters = dict(target_log_prob_fn=target_log_prob_fn,
                            num_generators=num_generators, name=name)

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
  def is_calibrated(self):
    return True

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
    """One independence proposal and its accept/reject, per chain."""
    with tf.name_scope(self.name or 'independence_metropolis_one_step'):
      seed = tfp.random.sanitize_seed(seed)
      z_seed, k_seed, accept_seed = tfp.random.split_seed(
          seed, n=3, salt='independence_metropolis')
      k, z = self._split(current_state)
      proposed_z = tf.random.stateless_normal(tf.shape(z), seed=z_seed,
                                              dtype=z.dtype)
      proposed_k = None
      if k is not None:
        proposed_k = tf.random.stateless_uniform(
            tf.shape(k), seed=k_seed, minval=0, maxval=self.num_generators,
            dtype=tf.int32)
      proposed_tlp = self._log_prob(proposed_k, proposed_z)
      current_tlp = previous_kernel_results.target_log_prob
      # The proposal density is p0(z) (times a constant over k).
      log_accept_ratio = ((proposed_tlp - standard_normal_log_prob(proposed_z))
                          - (current_tlp - standard_normal_log_prob(z)))
      log_accept_ratio = tf.where(tf.math.is_nan(log_accept_ratio),
                                  tf.cast(-float('inf'), proposed_tlp.dtype),
                                  log_accept_ratio)
      log_uniform = tf.math.log(tf.random.stateless_uniform(
          tf.shape(proposed_tlp), seed=accept_seed, dtype=proposed_tlp.dtype))
      is_accepted = log_uniform < log_accept_ratio
      mask = tf.reshape(is_accepted, tf.concat(
          [tf.shape(is_accepted), tf.ones([tf.rank(z) - 1], tf.int32)],
          axis=0))
      next_z = tf.where(mask, proposed_z, z)
      if k is None:
        next_state, proposed_state = next_z, proposed_z
      else:
        next_state = [tf.where(is_accepted, proposed_k, k), next_z]
        proposed_state = [proposed_k, proposed_z]
      return next_state, IndependenceMetropolisResults(
          target_log_prob=tf.where(is_accepted, proposed_tlp, current_tlp),
          log_accept_ratio=log_accept_ratio,
          is_accepted=is_accepted,
          proposed_state=proposed_state,
          seed=seed)

  def bootstrap_results(self, init_state):
    """Results holding the target log-density of `init_state`."""
    with tf.name_scope(self.name or 'independence_metropolis_bootstrap'):
      k, z = self._split(init_state)
      tlp = self._log_prob(k, z)
      return IndependenceMetropolisResults(
          target_log_prob=tlp,
          log_accept_ratio=tf.zeros_like(tlp),
          is_accepted=tf.ones_like(tlp, dtype=tf.bool),
          proposed_state=z if k is None else [k, z],
          seed=tf.zeros([2], tf.int32))


class UnadjustedLangevinResults(
    collections.namedtuple('UnadjustedLangevinResults', [
        'target_log_prob',
        'grads_target_log_prob',
        'seed',
    ])):
  """Results of `UnadjustedLangevin` (cached log-density and gradient)."""
  __slots__ = ()


class UnadjustedLangevin(tfp.mcmc.TransitionKernel):
  """Euler-Maruyama Langevin step `z + (s/2) grad log pi(z) + sqrt(s) xi`.

  No accept/reject, so the chain is not calibrated: its stationary law
  differs from `pi` by an amount that vanishes with the step size. One value
  and gradient evaluation of the target per step (the gradient at the new
  state is cached for the next step).
  """

  def __init__(self, target_log_prob_fn, step_size, name=None):
    """Creates the kernel.

    Args:
      target_log_prob_fn: callable `z -> [chains]` log density.
      step_size: positive step `s` (scalar or broadcastable to the state).
      name: optional name prefixed to the ops.
    """
    self._parameters = dict(target_log_prob_fn=target_log_prob_fn,
                            step_size=step_size, name=name)

  @property
  def parameters(self):
    return self._parameters

  @property
  def target_log_prob_fn(self):
    return self._parameters['target_log_prob_fn']

  @property
  def step_size(self):
    return self._parameters['step_size']

  @property
  def name(self):
    return self._parameters['name']

  @property
  def is_calibrated(self):
    return False

  def one_step(self, current_state, previous_kernel_results, seed=None):
    """One Euler-Maruyama step from the cached gradient; caches the next."""
    with tf.name_scope(self.name or 'unadjusted_langevin_one_step'):
      seed = tfp.random.sanitize_seed(seed)
      current_state = tf.convert_to_tensor(current_state)
      step = tf.cast(self.step_size, current_state.dtype)
      noise = tf.random.stateless_normal(
          tf.shape(current_state), seed=seed, dtype=current_state.dtype)
      next_state = (current_state
                    + 0.5 * step * previous_kernel_results.grads_target_log_prob
                    + tf.sqrt(step) * noise)
      tlp, grads = tfp.math.value_and_gradient(self.target_log_prob_fn,
                                               next_state)
      return next_state, UnadjustedLangevinResults(
          target_log_prob=tlp, grads_target_log_prob=grads, seed=seed)

  def bootstrap_results(self, init_state):
    """Results holding the log-density and gradient at `init_state`."""
    with tf.name_scope(self.name or 'unadjusted_langevin_bootstrap'):
      init_state = tf.convert_to_tensor(init_state)
      tlp, grads = tfp.math.value_and_gradient(self.target_log_prob_fn,
                                               init_state)
      return UnadjustedLangevinResults(
          target_log_prob=tlp, grads_target_log_prob=grads,
          seed=tf.zeros([2], tf.int32))


def _negate(energy_fn):
  return lambda z: -energy_fn(z)


def make_rep_kernel(energy_fn, step_size=0.01):
  """REP-GAN: MALA on `exp(-E)` (reference: 640 steps, `s = 0.01`)."""
  return tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(
      target_log_prob_fn=_negate(energy_fn), step_size=step_size)


def make_ddls_kernel(energy_fn, step_size=0.01):
  """DDLS: unadjusted Langevin on `exp(-E)`."""
  return UnadjustedLangevin(_negate(energy_fn), step_size=step_size)


def make_mh_kernel(energy_fn, num_generators=None):
  """MH-GAN independence sampler for `exp(-E)` with `p0` proposals.

  Args:
    energy_fn: `z -> [chains]`, or `(z, k) -> [chains]` with
      `num_generators`.
    num_generators: if given, the state is `[k, z]` and proposals draw `k`
      uniformly as well (see `IndependenceMetropolis`).
  """
  if num_generators is None:
    return IndependenceMetropolis(_negate(energy_fn))
  return IndependenceMetropolis(lambda k, z: -energy_fn(z, k),
                                num_generators=num_generators)
