"""Iterated sampling-importance-resampling (i-SIR) with independent proposals.

One step of i-SIR from the current state `x_0` draws `N` fresh proposals
`x_1..x_N ~ q`, independently of `x_0`, and picks the next state among the
`N + 1` candidates `x_0..x_N` with probabilities proportional to the
importance weights `w_i = pi(x_i) / q(x_i)`. It is a Gibbs sampler on the
extended space of the candidates and the index of the chosen one, so it
leaves `pi` invariant exactly, for any `N >= 1`, with no accept/reject step;
`N = 1` is the independence sampler with Barker's acceptance rule instead
of Metropolis-Hastings'. The chance of leaving the current state grows with
`N`: `1 - w_0 / sum_i w_i`.

For a GAN the proposal is the latent prior `q = p0` and the target
`pi(z) ~ p0(z) exp(d_c(G(z)))`, so that `w = exp(d_c(G(z)))`: the
discriminator's density-ratio estimate reweights the generator's own
samples, as in MH-GAN, with `N` candidates per step instead of one. In
joint mode (`num_generators`) the state is `[k, z]` and a proposal also
draws `k ~ Uniform{0..K-1}`; the uniform factor of `q` cancels in the
normalised weights.

Cost: `N` evaluations of the target per step (the current state's is kept
in the results), none with a gradient.

References:
  Christophe Andrieu, Anthony Lee, Matti Vihola. Uniform ergodicity of the
  iterated conditional SMC and geometric ergodicity of particle Gibbs
  samplers. Bernoulli, 2018.
  Sergey Samsonov, Evgeny Lagutin, Marylou Gabrie, Alain Durmus, Alexey
  Naumov, Eric Moulines. Local-global MCMC kernels: the best of both worlds.
  NeurIPS, 2022 (Ex2MCMC; i-SIR is its global kernel).
"""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.models.latent_prior import get_latent_prior

__all__ = [
    'ImportanceResampling',
    'ImportanceResamplingResults',
    'ISIR_SALT',
]

#: Salt of `tfp.random.split_seed` for a step's proposals and its choice.
ISIR_SALT = 'iterated_sir'


class ImportanceResamplingResults(
    collections.namedtuple('ImportanceResamplingResults', [
        'target_log_prob',
        'log_importance_weight',
        'is_accepted',
        'leave_prob',
        'seed',
    ])):
  """Results of `ImportanceResampling`.

  Attributes:
    target_log_prob: float `[chains]`, `log pi` of the current state.
    log_importance_weight: float `[chains]`, `log pi - log q` of the current
      state (up to the constant of a uniform generator index).
    is_accepted: bool `[chains]`, whether the last step picked a fresh
      proposal rather than keeping the current state.
    leave_prob: float `[chains]`, the probability the last step had of
      leaving the current state, `1 - w_0 / sum_i w_i`.
    seed: int32 `[2]`, the seed of the last step.
  """
  __slots__ = ()


def _gumbel_choice(log_weights, seed):
  """Index `[chains]` drawn with probabilities `softmax(log_weights)` per chain.

  `log_weights` is `[candidates, chains]`. Gumbel-max: each chain's draw
  depends only on its own column and noise, so that a chain's choice does
  not depend on the other chains (sharded chains draw what one device does).
  """
  dtype = log_weights.dtype
  uniform = tf.random.stateless_uniform(
      tf.shape(log_weights), seed, minval=np.finfo(dtype.as_numpy_dtype).tiny,
      maxval=1., dtype=dtype)
  gumbel = -tf.math.log(-tf.math.log(uniform))
  return tf.argmax(log_weights + gumbel, axis=0, output_type=tf.int32)


def _pick(candidates, index):
  """`candidates[index[c], c, ...]` for every chain `c` (`[N + 1, chains, ...]`)."""
  rank = len(candidates.shape)
  perm = [1, 0] + list(range(2, rank))
  return tf.gather(tf.transpose(candidates, perm), index[:, tf.newaxis],
                   axis=1, batch_dims=1)[:, 0]


class ImportanceResampling(tfp.mcmc.TransitionKernel):
  """i-SIR: the next state is resampled among `N` prior proposals and itself.

  The target `pi` is given by `target_log_prob_fn` up to a constant; the
  proposal `q` is the latent prior `p0` (`LatentPrior`: `sample`,
  `log_prob`), with, for a joint state `[k, z]`, a uniform generator index.
  The kernel is calibrated: it leaves `pi` invariant exactly.

  #### Example

  `pi(z) ~ N(z; 0, 1) exp(z)`, i.e. `N(1, 1)`, with 8 proposals per step:

  ```python
  import tensorflow as tf
  import tensorflow_probability as tfp

  def target_log_prob_fn(z):
    return tf.reduce_sum(-0.5 * z**2 + z, axis=-1)

  kernel = ImportanceResampling(target_log_prob_fn, num_proposals=8)
  samples = tfp.mcmc.sample_chain(
      num_results=200, current_state=tf.zeros([100, 1]), kernel=kernel,
      num_burnin_steps=20, trace_fn=None, seed=[1, 2])
  # tf.reduce_mean(samples) is about 1, tf.math.reduce_variance about 1.
  ```

  #### References

  Christophe Andrieu, Anthony Lee, Matti Vihola. Uniform ergodicity of the
  iterated conditional SMC and geometric ergodicity of particle Gibbs
  samplers. Bernoulli, 2018.

  Sergey Samsonov et al. Local-global MCMC kernels: the best of both worlds.
  NeurIPS, 2022.
  """

  def __init__(self, target_log_prob_fn, num_proposals, num_generators=None,
               prior=None, name=None):
    """Creates the kernel.

    Args:
      target_log_prob_fn: callable `z -> [chains]` (or `(k, z) -> [chains]`
        with `num_generators`), `log pi` up to a constant. It is called on
        one batch of `[chains, ...]` states per proposal.
      num_proposals: Python int `N >= 1`, fresh proposals per step.
      num_generators: `None` for a state `z`, or the number `K >= 1` of
        generators for a joint state `[k, z]` (`k` int32 `[chains]`).
      prior: the proposal `p0`, a `LatentPrior` or its name (default
        normal).
      name: optional name prefixed to the ops.
    """
    num_proposals = int(num_proposals)
    if num_proposals < 1:
      raise ValueError(f'`num_proposals` must be positive, got {num_proposals}.')
    if num_generators is not None and int(num_generators) < 1:
      raise ValueError('`num_generators` must be positive.')
    self._parameters = dict(target_log_prob_fn=target_log_prob_fn,
                            num_proposals=num_proposals,
                            num_generators=num_generators,
                            prior=get_latent_prior(prior), name=name)

  @property
  def parameters(self):
    return self._parameters

  @property
  def target_log_prob_fn(self):
    return self._parameters['target_log_prob_fn']

  @property
  def num_proposals(self):
    return self._parameters['num_proposals']

  @property
  def num_generators(self):
    return self._parameters['num_generators']

  @property
  def prior(self):
    return self._parameters['prior']

  @property
  def name(self):
    return self._parameters['name']

  @property
  def is_calibrated(self):
    """`True`: i-SIR leaves the target invariant without a correction."""
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

  def _log_weight(self, target_log_prob, z):
    # A NaN target (a broken discriminator output) must never be chosen.
    log_weight = target_log_prob - self.prior.log_prob(z)
    return tf.where(tf.math.is_nan(log_weight),
                    tf.constant(-np.inf, log_weight.dtype), log_weight)

  def one_step(self, current_state, previous_kernel_results, seed=None):
    """Draws `N` proposals and resamples the next state among `N + 1`.

    Args:
      current_state: `z` `[chains, ...]`, or `[k, z]` in joint mode.
      previous_kernel_results: `ImportanceResamplingResults` at the state.
      seed: stateless seed.

    Returns:
      `(next_state, ImportanceResamplingResults)`.
    """
    with tf.name_scope(self.name or 'importance_resampling_one_step'):
      seed = tfp.random.sanitize_seed(seed)
      z_seed, k_seed, choice_seed = tfp.random.split_seed(seed, n=3,
                                                          salt=ISIR_SALT)
      k, z = self._split(current_state)
      previous = previous_kernel_results
      shape = tf.concat([[self.num_proposals], tf.shape(z)], axis=0)
      proposed_z = self.prior.sample(shape, z_seed, dtype=z.dtype)
      if k is None:
        proposed_k = None
        proposed_log_prob = tf.map_fn(self.target_log_prob_fn, proposed_z,
                                      fn_output_signature=z.dtype)
      else:
        proposed_k = tf.random.stateless_uniform(
            shape[:2], seed=k_seed, minval=0, maxval=self.num_generators,
            dtype=tf.int32)
        proposed_log_prob = tf.map_fn(
            lambda kz: self.target_log_prob_fn(*kz), (proposed_k, proposed_z),
            fn_output_signature=z.dtype)
      proposed_log_weight = tf.map_fn(
          lambda args: self._log_weight(*args), (proposed_log_prob, proposed_z),
          fn_output_signature=z.dtype)
      log_weights = tf.concat([previous.log_importance_weight[tf.newaxis],
                               proposed_log_weight], axis=0)
      index = _gumbel_choice(log_weights, choice_seed)
      candidates_z = tf.concat([z[tf.newaxis], proposed_z], axis=0)
      new_z = _pick(candidates_z, index)
      target_log_prob = _pick(tf.concat(
          [previous.target_log_prob[tf.newaxis], proposed_log_prob], axis=0),
                              index)
      log_weight = _pick(log_weights, index)
      leave_prob = 1. - tf.exp(log_weights[0] - tf.reduce_logsumexp(
          log_weights, axis=0))
      if k is None:
        new_state = new_z
      else:
        new_state = [_pick(tf.concat([k[tf.newaxis], proposed_k], axis=0),
                           index), new_z]
      return new_state, ImportanceResamplingResults(
          target_log_prob=target_log_prob,
          log_importance_weight=log_weight,
          is_accepted=index > 0,
          leave_prob=leave_prob,
          seed=seed)

  def bootstrap_results(self, init_state):
    """Results holding `log pi` and the importance weight of `init_state`."""
    with tf.name_scope(self.name or 'importance_resampling_bootstrap_results'):
      k, z = self._split(init_state)
      target_log_prob = self._log_prob(k, z)
      return ImportanceResamplingResults(
          target_log_prob=target_log_prob,
          log_importance_weight=self._log_weight(target_log_prob, z),
          is_accepted=tf.zeros_like(target_log_prob, dtype=tf.bool),
          leave_prob=tf.zeros_like(target_log_prob),
          seed=tf.zeros([2], tf.int32))
