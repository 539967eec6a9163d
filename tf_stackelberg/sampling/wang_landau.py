"""Adaptive Wang-Landau (SAMC) transition kernel over energy levels.

`WangLandau` samples a flattened version of `pi(z) ~ exp(-E(z))`: the energy
axis `[E_lo, E_hi]` is cut into `M` equal bins (`energy_bins`), and a bias
`theta` learned by stochastic approximation (SAMC; gain `gain_schedule`)
raises the levels the chains crowd into, so that they spend the desired share
`omega_j` of their time in each bin and climb over the barriers between
modes. Moves inside the biased target are made by an ordinary TFP kernel
(MALA by default, `make_mala_kernel`), rebuilt at every step with the current
bias and a step size adapted toward a target acceptance (`step_size`); the
inner kernel's cached values are rewritten for the new bias and step, so that
every Metropolis-Hastings ratio is exact. Expectations under `pi` need the
importance weights `energy_bins.importance_log_weights`. The algorithm, its
cost and its sharded form are described in docs/design.md, section 7; the
rules that set the bins from a warm-up belong to the `'wl'` sampler
(`samplers/wl.py`).
"""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.common import salts
from tf_stackelberg.sampling.checks import argument_assertions
from tf_stackelberg.sampling.checks import check_num_bins
from tf_stackelberg.sampling.checks import check_static_arguments
from tf_stackelberg.sampling.energy_bins import energy_to_bin
from tf_stackelberg.sampling.energy_bins import lookup_bias
from tf_stackelberg.sampling.settings import DEFAULTS
from tf_stackelberg.sampling.step_size import acceptance_probability
from tf_stackelberg.sampling.step_size import adapt_step_size
from tf_stackelberg.sampling.unnest import get_outermost
from tf_stackelberg.sampling.unnest import replace_outermost

__all__ = [
    'WangLandau',
    'WangLandauResults',
    'gain_schedule',
    'make_mala_kernel',
]


class WangLandauResults(
    collections.namedtuple('WangLandauResults', [
        'inner_results',
        'theta',
        'visit_counts',
        'energy',
        'bin_index',
        'bias',
        'step',
        'log_step_size',
        'accept_prob',
        'window_accept_sum',
        'window_steps',
        'num_windows',
        'seed',
    ])):
  """Results of `WangLandau` (all fields are `Tensor`s of fixed shape).

  Attributes:
    inner_results: results of the inner kernel, kept consistent with the
      current bias and step size.
    theta: float bias, `[M]` if shared by all chains else `[chains, M]`.
    visit_counts: int32 visit histogram over the bins, same shape as `theta`
      (shared: summed over chains).
    energy: float `[chains]`, energy of the current state.
    bin_index: int32 `[chains]`, `J(energy)`.
    bias: float `[chains]`, the bias `theta[bin_index]` of the current state
      under the current `theta` (the working target is `-energy - bias`);
      `exp(bias)` are the importance weights of the states.
    step: int32 scalar, number of transitions made.
    log_step_size: float scalar, log of the step size the next step will use.
    accept_prob: float `[chains]`, acceptance probability of the last step.
    window_accept_sum: float scalar, sum of the chain-mean acceptance
      probabilities in the current adaptation window.
    window_steps: int32 scalar, steps in the current adaptation window.
    num_windows: int32 scalar, number of step-size updates made so far.
    seed: int32 `[2]`, the stateless seed used by the last step.
  """
  __slots__ = ()


def gain_schedule(step, t0):
  """SAMC gain `gamma_t = t0 / max(t0, t)` (1 for `t <= t0`, then `t0 / t`).

  Args:
    step: int or `Tensor`, the (1-based) index `t` of the transition.
    t0: positive number, the length of the constant-gain phase.

  Returns:
    float32 `Tensor` (or float64 if `step` is float64) with the gains.
  """
  step = tf.convert_to_tensor(step)
  dtype = step.dtype if step.dtype.is_floating else tf.float32
  step = tf.cast(step, dtype)
  t0 = tf.cast(t0, dtype)
  return t0 / tf.maximum(t0, step)


def make_mala_kernel(target_log_prob_fn, step_size):
  """Default inner kernel: `tfp.mcmc.MetropolisAdjustedLangevinAlgorithm`."""
  return tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(
      target_log_prob_fn=target_log_prob_fn, step_size=step_size)


def _refresh_cached(results, target_log_prob, step_ratio, step_size):
  """Rewrites the inner kernel's cached values for a new bias / step size.

  The cached `target_log_prob` of the current state becomes the new one;
  MALA's cached `diffusion_drift`, linear in the step, is rescaled by
  `step_ratio`; a cached `step_size` (HMC storing its parameters) becomes
  `step_size`.
  """
  old = get_outermost(results, 'target_log_prob')
  updates = dict(target_log_prob=tf.cast(target_log_prob, old.dtype))
  drift = get_outermost(results, 'diffusion_drift')
  if drift is not None:
    updates['diffusion_drift'] = tf.nest.map_structure(
        lambda d: d * tf.cast(step_ratio, d.dtype), drift)
  cached_step = get_outermost(results, 'step_size')
  if cached_step is not None:
    updates['step_size'] = tf.nest.map_structure(
        lambda s: tf.broadcast_to(tf.cast(step_size, s.dtype), tf.shape(s)),
        cached_step)
  return replace_outermost(results, **updates)


class WangLandau(tfp.mcmc.TransitionKernel):
  """Wang-Landau / SAMC flattening of `exp(-E)` around an inner TFP kernel.

  The state is a single `Tensor` `z` of shape `[chains, ...]`; `energy_fn(z)`
  returns `[chains]` energies. The inner kernel (MALA by default) is rebuilt
  at every step with the current bias and step size, through
  `make_inner_kernel_fn(target_log_prob_fn, step_size)`. The algorithm is
  described in docs/design.md, section 7.

  A GAN's latent energy `E(z) = -log p0(z) - d(G(z))` is rugged: the chains
  of a plain Langevin sampler stay in the basin they start in. The learned
  bias raises the energy levels the chains crowd into and lowers the ones
  they avoid, so that the chains also climb the levels between basins and
  cross to other modes; importance weights then turn their states back into
  draws from `exp(-E)`.

  #### Examples

  Sampling a two-mode 1-D density with MALA inside: the bias adapts for
  1500 steps, then stays fixed while the weighted states are collected.

  ```python
  import tensorflow as tf
  import tensorflow_probability as tfp
  from tf_stackelberg.sampling import WangLandau, importance_log_weights

  def energy_fn(z):  # 0.25 N(-4, 1) + 0.75 N(4, 1); barrier E ~ 8 at z = 0
    return -tf.reduce_logsumexp(
        tf.math.log([0.25, 0.75]) - 0.5 * (z - [-4., 4.])**2, axis=-1)

  kernel = WangLandau(energy_fn, energy_lo=0.5, energy_hi=9.5, num_bins=9,
                      step_size=1.0, bias_gain_t0=100.,
                      num_bias_adaptation_steps=1500)

  @tf.function(jit_compile=True)
  def run():
    return tfp.mcmc.sample_chain(
        4500, tf.fill([256, 1], -4.), kernel=kernel,
        trace_fn=lambda _, r: importance_log_weights(r, normalize=False),
        seed=[1, 2])

  out = run()
  z, log_w = out.all_states[1500:, :, 0], out.trace[1500:]
  w = tf.exp(log_w - tf.reduce_max(log_w))
  mean = tf.reduce_sum(w * z) / tf.reduce_sum(w)  # ~ 2.0 = E_pi[z]
  ```

  Other inner kernels (the step size is their scale parameter):

  ```python
  # random-walk Metropolis, the step being the proposal scale
  rwm = lambda fn, s: tfp.mcmc.RandomWalkMetropolis(
      fn, new_state_fn=tfp.mcmc.random_walk_normal_fn(scale=s))
  # HMC with three leapfrog steps
  hmc = lambda fn, s: tfp.mcmc.HamiltonianMonteCarlo(fn, s, 3)
  kernel = WangLandau(energy_fn, 0.5, 9.5, num_bins=9, step_size=0.5,
                      make_inner_kernel_fn=hmc, target_accept_prob=0.65)
  ```

  `is_calibrated` is `False`: the chain targets the flattened `pi_theta`,
  which moreover changes while `theta` adapts. Expectations under
  `pi ~ exp(-E)` need the self-normalised importance weights
  `exp(theta[J(E(z))])` (`importance_log_weights`). With the bias frozen
  (`num_bias_adaptation_steps`) and the step size fixed, the kernel is an
  ordinary calibrated kernel for `pi_theta`.

  #### References

  [1]: Fugao Wang and David P. Landau. Efficient, multiple-range random walk
       algorithm to calculate the density of states. Physical Review
       Letters, 86(10), 2001.
  [2]: Faming Liang, Chuanhai Liu and Raymond J. Carroll. Stochastic
       approximation in Monte Carlo computation. Journal of the American
       Statistical Association, 102(477), 2007.
  [3]: Christophe Andrieu and Johannes Thoms. A tutorial on adaptive MCMC.
       Statistics and Computing, 18, 2008.
  [4]: Tong Che et al. Your GAN is secretly an energy-based model and you
       should use discriminator driven latent sampling. NeurIPS, 2020.
  [5]: Yifei Wang et al. Reparameterized sampling for generative adversarial
       networks. ECML PKDD, 2021.
  [6]: Wei Deng, Guang Lin and Faming Liang. A contour stochastic gradient
       Langevin dynamics algorithm for simulations of multi-modal
       distributions. NeurIPS, 2020.
  """

  def __init__(self,
               energy_fn,
               energy_lo,
               energy_hi,
               num_bins=DEFAULTS.num_bins,
               step_size=DEFAULTS.step_size,
               make_inner_kernel_fn=make_mala_kernel,
               shared_bias=DEFAULTS.shared_bias,
               bias_gain_t0=DEFAULTS.t0,
               num_bias_adaptation_steps=None,
               initial_bias=None,
               target_bin_probs=None,
               target_accept_prob=DEFAULTS.target_accept_prob,
               num_adaptation_steps=0,
               adaptation_window=10,
               adaptation_rate=3.0,
               validate_args=False,
               name=None,
               chain_shard=None):
    """Creates the kernel.

    Args:
      energy_fn: callable `z -> [chains]` energies `E(z)`; must be
        differentiable for gradient-based inner kernels.
      energy_lo: lower end `E_lo` of the binned energy range (finite).
      energy_hi: upper end `E_hi > E_lo` (finite).
      num_bins: Python int, number of bins `M >= 2` (with a single bin the
        bias is a constant and the kernel is its inner kernel).
      step_size: initial step size of the inner kernel (positive).
      make_inner_kernel_fn: callable `(target_log_prob_fn, step_size) ->
        TransitionKernel`.
      shared_bias: if `True` one bias `[M]` is learned by all chains (updated
        with the chain average of the one-hot visits); else each chain has
        its own row, `[chains, M]`.
      bias_gain_t0: `t0 > 0` of the gain `gamma_t = t0 / max(t0, t)`.
      num_bias_adaptation_steps: if not `None`, the bias is frozen after this
        many steps (the histogram keeps counting).
      initial_bias: optional initial `theta`, shape `[M]` or `[chains, M]`;
        zeros by default (only differences between bins matter).
      target_bin_probs: optional desired visiting distribution `omega` over
        the bins (`[M]`, non-negative, summing to one within `1e-4`);
        uniform by default (a flat histogram). The update becomes
        `theta <- theta + gamma_t (onehot(J) - omega)` and the chain spends
        the fraction `omega_j` of its time in bin `j` (Liang et al., 2007,
        allow any desired distribution, e.g. one that favours low energies).
        The importance weights are unchanged.
      target_accept_prob: acceptance probability in `(0, 1)` the step size
        is tuned to (0.574 is optimal for MALA, about 0.234 for random-walk
        Metropolis, 0.65 for HMC).
      num_adaptation_steps: the step size is adapted only during the first
        this many steps; 0 disables adaptation.
      adaptation_window: steps whose mean acceptance makes one update.
      adaptation_rate: gain `c` of the update
        `log h <- log h + c / sqrt(n) * (mean_accept - target)` applied at
        the end of the `n`-th window.
      validate_args: Python `bool`. The arguments whose values are known
        when the kernel is built (Python numbers, numpy arrays, eager or
        constant tensors) are always checked, raising `ValueError`. With
        `True`, the others (tensors computed in a graph) are checked by
        assertions when the kernel's results are bootstrapped and at every
        step (XLA drops the assertions); with `False` they are trusted.
      name: optional name prefixed to the ops.
      chain_shard: `None`, or the `sharding.ChainShard` of a replica that
        evaluates a block of rows of a state sharded over the replicas of a
        `tf.distribute` strategy (the other rows are placeholders). The
        statistics over chains are then taken over the chains of all
        replicas with the replica context's `all_reduce`: the per-step
        visit histogram of a shared bias (summed) and the acceptance
        probabilities of the step-size rule (gathered exactly, so the mean
        is the one-device mean). Under a strategy that synchronises through
        `merge_call` (`MirroredStrategy` on CPUs), `one_step` must then run
        outside any `tf.while_loop` or `tf.cond` of the replica function.

    Raises:
      ValueError: for an argument known to be invalid when the kernel is
        built: `num_bins` not a Python int of at least 2, non-finite
        `energy_lo` or `energy_hi`, `energy_hi <= energy_lo`,
        `step_size <= 0`, `bias_gain_t0 <= 0`, `target_accept_prob` outside
        `(0, 1)`, `target_bin_probs` of another shape than `[num_bins]`, with
        a negative entry or not summing to one within `1e-4`, or
        `adaptation_window < 1`.
    """
    num_bins = check_num_bins(num_bins)
    if adaptation_window < 1:
      raise ValueError('`adaptation_window` must be positive, got '
                       f'{adaptation_window}.')
    self._dynamic_checks = check_static_arguments(
        energy_lo=energy_lo, energy_hi=energy_hi, num_bins=num_bins,
        step_size=step_size, bias_gain_t0=bias_gain_t0,
        target_bin_probs=target_bin_probs,
        target_accept_prob=target_accept_prob)
    self._parameters = dict(
        energy_fn=energy_fn,
        energy_lo=energy_lo,
        energy_hi=energy_hi,
        num_bins=num_bins,
        step_size=step_size,
        make_inner_kernel_fn=make_inner_kernel_fn,
        shared_bias=shared_bias,
        bias_gain_t0=bias_gain_t0,
        num_bias_adaptation_steps=num_bias_adaptation_steps,
        initial_bias=initial_bias,
        target_bin_probs=target_bin_probs,
        target_accept_prob=target_accept_prob,
        num_adaptation_steps=num_adaptation_steps,
        adaptation_window=adaptation_window,
        adaptation_rate=adaptation_rate,
        validate_args=validate_args,
        name=name,
        chain_shard=chain_shard,
    )

  # ----------------------------------------------------------- properties
  @property
  def parameters(self):
    """`dict` of the constructor arguments."""
    return self._parameters

  @property
  def energy_fn(self):
    return self._parameters['energy_fn']

  @property
  def energy_lo(self):
    return self._parameters['energy_lo']

  @property
  def energy_hi(self):
    return self._parameters['energy_hi']

  @property
  def num_bins(self):
    return self._parameters['num_bins']

  @property
  def step_size(self):
    """Initial step size (the current one is in `results.log_step_size`)."""
    return self._parameters['step_size']

  @property
  def make_inner_kernel_fn(self):
    return self._parameters['make_inner_kernel_fn']

  @property
  def shared_bias(self):
    return self._parameters['shared_bias']

  @property
  def bias_gain_t0(self):
    return self._parameters['bias_gain_t0']

  @property
  def num_bias_adaptation_steps(self):
    return self._parameters['num_bias_adaptation_steps']

  @property
  def target_accept_prob(self):
    return self._parameters['target_accept_prob']

  @property
  def num_adaptation_steps(self):
    return self._parameters['num_adaptation_steps']

  @property
  def adaptation_window(self):
    return self._parameters['adaptation_window']

  @property
  def adaptation_rate(self):
    return self._parameters['adaptation_rate']

  @property
  def validate_args(self):
    return self._parameters['validate_args']

  @property
  def name(self):
    return self._parameters['name']

  @property
  def chain_shard(self):
    return self._parameters['chain_shard']

  @property
  def is_calibrated(self):
    """`False`: the stationary law is the flattened, adapting `pi_theta`.

    Reweight with `importance_log_weights` for expectations under `pi`.
    """
    return False

  # -------------------------------------------------------------- helpers
  def _argument_assertions(self, dtype):
    """Assertions on the arguments not known when the kernel was built.

    Empty unless `validate_args`; built in the graph that uses them.
    """
    if not self.validate_args or not self._dynamic_checks:
      return []
    return argument_assertions(self._parameters, self._dynamic_checks, dtype)

  def _with_assertions(self, state):
    """`state`, after the argument assertions when there are any."""
    assertions = self._argument_assertions(state.dtype)
    if not assertions:
      return state
    with tf.control_dependencies(assertions):
      return tf.identity(state)

  def bin_index(self, energy):
    """`J(E)` for this kernel's range and bin count."""
    return energy_to_bin(energy, self.energy_lo, self.energy_hi,
                         self.num_bins)

  def _desired_visits(self, dtype):
    probs = self._parameters['target_bin_probs']
    if probs is None:
      return tf.cast(1. / self.num_bins, dtype)
    return tf.cast(probs, dtype)

  def _shared_visits(self, bin_index):
    """int32 `[M]` visits of the current step per bin, over all chains."""
    shard = self.chain_shard
    ones = tf.ones_like(bin_index)
    if shard is not None:
      ones = shard.keep_local(ones)  # the placeholder rows do not count
    # A scatter-add of the chains' bins: much cheaper than reducing a
    # [chains, M] one-hot matrix when there are many chains.
    counts = tf.math.unsorted_segment_sum(ones, bin_index, self.num_bins)
    if shard is not None:
      counts = shard.all_reduce_sum(counts)
    return counts

  def _all_chains(self, values):
    """Per-chain `values` of every chain (of every replica, if sharded)."""
    if self.chain_shard is None:
      return values
    return self.chain_shard.gather(values)

  def bias(self, theta, energy):
    """The bias `theta[J(E)]` the working target subtracts from `-E`."""
    return lookup_bias(theta, tf.stop_gradient(self.bin_index(energy)))

  def bin_edges(self):
    """numpy array of the `M + 1` bin edges."""
    return np.linspace(float(self.energy_lo), float(self.energy_hi),
                       self.num_bins + 1)

  def _biased_target(self, theta, evaluated=None):
    """`z -> -E(z) - theta[J(E(z))]`; records each energy in `evaluated`."""

    def target_log_prob_fn(z):
      energy = self.energy_fn(z)
      if evaluated is not None:
        evaluated.append(energy)
      return -energy - self.bias(theta, energy)

    return target_log_prob_fn

  def _inner_kernel(self, theta, log_step_size, evaluated=None):
    return self.make_inner_kernel_fn(
        self._biased_target(theta, evaluated), tf.exp(log_step_size))

  def _read_energy(self, state, inner_results, theta, evaluated,
                   previous_energy=None):
    """Energy of `state`, read back from the inner kernel's own evaluation.

    `evaluated` holds the energies the biased target computed while the inner
    kernel ran; the last one belongs to the state the kernel proposed (or
    bootstrapped). For a Metropolis-Hastings inner kernel, rejected chains
    keep `previous_energy`. The value read is checked against the inner
    kernel's cached target log-density; if they disagree (an inner kernel
    that evaluates in another order), or nothing could be read, the energy is
    evaluated explicitly.
    """
    candidate = evaluated[-1] if evaluated else None
    if candidate is not None and not tf.executing_eagerly():
      # Values computed inside a loop of the inner kernel (HMC's leapfrog)
      # live in another graph and cannot be read here.
      if candidate.graph is not tf.compat.v1.get_default_graph():
        candidate = None
    current_tlp = get_outermost(inner_results, 'target_log_prob')
    if candidate is None or current_tlp is None:
      return self.energy_fn(state)
    is_accepted = get_outermost(inner_results, 'is_accepted')
    if is_accepted is None or previous_energy is None:
      energy = candidate
    else:
      energy = tf.where(is_accepted, candidate, previous_energy)
    expected = -energy - self.bias(theta, energy)
    current_tlp = tf.cast(current_tlp, expected.dtype)
    tol = 1e-4 * (1. + tf.abs(current_tlp))
    # Equal infinities count as agreement (their difference is NaN).
    agree = (tf.equal(expected, current_tlp) |
             (tf.abs(expected - current_tlp) <= tol))
    return tf.cond(tf.reduce_all(agree), lambda: energy,
                   lambda: self.energy_fn(state))

  # ----------------------------------------------------------- interface
  def one_step(self, current_state, previous_kernel_results, seed=None):
    """Makes one inner transition, then updates bias and step size.

    Args:
      current_state: `Tensor` `[chains, ...]`.
      previous_kernel_results: `WangLandauResults` from `bootstrap_results`
        or a previous `one_step`.
      seed: stateless seed (anything `tfp.random.sanitize_seed` accepts).

    Returns:
      `(next_state, WangLandauResults)`.
    """
    with tf.name_scope(self.name or 'wang_landau_one_step'):
      seed = tfp.random.sanitize_seed(seed)
      (inner_seed,) = tfp.random.split_seed(seed, n=1, salt=salts.WANG_LANDAU)
      current_state = self._with_assertions(
          tf.convert_to_tensor(current_state))
      previous = previous_kernel_results
      theta = previous.theta
      dtype = theta.dtype
      num_bins = self.num_bins

      evaluated = []
      inner_kernel = self._inner_kernel(theta, previous.log_step_size,
                                        evaluated)
      next_state, inner_results = inner_kernel.one_step(
          current_state, previous.inner_results, seed=inner_seed)
      energy = self._read_energy(next_state, inner_results, theta, evaluated,
                                 previous_energy=previous.energy)
      bin_index = self.bin_index(energy)

      # SAMC bias update.
      step = previous.step + 1
      gain = gain_schedule(step, self.bias_gain_t0)
      gain = tf.cast(gain, dtype)
      if self.num_bias_adaptation_steps is not None:
        gain = tf.where(step <= self.num_bias_adaptation_steps, gain,
                        tf.zeros_like(gain))
      desired = self._desired_visits(dtype)
      if self.shared_bias:
        counts = self._shared_visits(bin_index)
        frequencies = (tf.cast(counts, dtype) /
                       tf.cast(tf.size(bin_index), dtype))
        new_theta = theta + gain * (frequencies - desired)
        visit_counts = previous.visit_counts + counts
      else:
        visits = tf.one_hot(bin_index, num_bins, dtype=dtype)
        new_theta = theta + gain * (visits - desired)
        visit_counts = previous.visit_counts + tf.cast(visits, tf.int32)

      # Step-size adaptation, from the acceptance of all chains.
      accept_prob = acceptance_probability(inner_results, energy)
      log_step_size = previous.log_step_size
      adapted = adapt_step_size(
          previous, tf.reduce_mean(self._all_chains(accept_prob)), step,
          target_accept_prob=self.target_accept_prob,
          num_adaptation_steps=self.num_adaptation_steps,
          adaptation_window=self.adaptation_window,
          adaptation_rate=self.adaptation_rate)

      # Bring the inner kernel's cache in line with the new target and step.
      new_bias = self.bias(new_theta, energy)
      new_tlp = -energy - new_bias
      inner_results = _refresh_cached(
          inner_results, new_tlp,
          tf.exp(adapted['log_step_size'] - log_step_size),
          tf.exp(adapted['log_step_size']))

      return next_state, WangLandauResults(
          inner_results=inner_results,
          theta=new_theta,
          visit_counts=visit_counts,
          energy=energy,
          bin_index=bin_index,
          bias=new_bias,
          step=step,
          accept_prob=accept_prob,
          seed=seed,
          **adapted)

  def bootstrap_results(self, init_state):
    """Initial `WangLandauResults` for `init_state` (`[chains, ...]`).

    Costs one evaluation of the energy (with its gradient for MALA/HMC): the
    inner kernel's bootstrap evaluation is reused for `energy`.
    """
    with tf.name_scope(self.name or 'wang_landau_bootstrap_results'):
      init_state = self._with_assertions(tf.convert_to_tensor(init_state))
      dtype = init_state.dtype
      num_bins = self.num_bins
      num_chains = tf.shape(init_state)[0]
      if self._parameters['initial_bias'] is not None:
        theta = tf.cast(self._parameters['initial_bias'], dtype)
      elif self.shared_bias:
        theta = tf.zeros([num_bins], dtype)
      else:
        theta = tf.zeros(tf.stack([num_chains, num_bins]), dtype)
        if init_state.shape[0] is not None:
          theta = tf.ensure_shape(theta, [init_state.shape[0], num_bins])
      expected_rank = 1 if self.shared_bias else 2
      if theta.shape.rank != expected_rank:
        raise ValueError('`initial_bias` must have rank {} (saw shape {}).'
                         .format(expected_rank, theta.shape))
      chain_zeros = tf.ensure_shape(tf.zeros(tf.shape(init_state)[:1], dtype),
                                    init_state.shape[:1])
      log_step_size = tf.math.log(tf.cast(self.step_size, dtype))
      return self.refresh_results(
          init_state,
          WangLandauResults(
              inner_results=None,
              theta=theta,
              visit_counts=tf.zeros_like(theta, dtype=tf.int32),
              energy=chain_zeros,
              bin_index=tf.zeros_like(chain_zeros, dtype=tf.int32),
              bias=chain_zeros,
              step=tf.zeros([], tf.int32),
              log_step_size=log_step_size,
              accept_prob=chain_zeros,
              window_accept_sum=tf.zeros([], dtype),
              window_steps=tf.zeros([], tf.int32),
              num_windows=tf.zeros([], tf.int32),
              seed=tf.zeros([2], tf.int32)))

  def refresh_results(self, state, results):
    """Recomputes the per-state parts of `results` at `state`.

    Keeps the adaptive quantities (bias, histogram, counters, step size) and
    re-evaluates the energy, its bin and the inner kernel's cache with one
    evaluation of the energy (the inner kernel's bootstrap). Used when the
    energy function itself changes, e.g. a new generator index in
    `JointGeneratorKernel`.

    Args:
      state: `Tensor` `[chains, ...]`.
      results: `WangLandauResults` whose adaptive fields are kept (its
        `inner_results`, `energy` and `bin_index` may be stale or `None`).

    Returns:
      `WangLandauResults` for `state`.
    """
    state = tf.convert_to_tensor(state)
    evaluated = []
    inner_results = self._inner_kernel(
        results.theta, results.log_step_size,
        evaluated).bootstrap_results(state)
    energy = self._read_energy(state, inner_results, results.theta, evaluated)
    return results._replace(inner_results=inner_results, energy=energy,
                            bin_index=self.bin_index(energy),
                            bias=self.bias(results.theta, energy))
