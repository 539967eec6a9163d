"""Adaptive Wang-Landau (SAMC) transition kernel over energy levels.

The kernel samples a flattened version of `pi(z) ~ exp(-E(z))`. The energy
axis `[E_lo, E_hi]` is cut into `M` bins of equal width `dE`, with the bin of
an energy given by

```none
J(E) = clip(floor((E - E_lo) / dE), 0, M - 1)
```

(energies outside the range fall into the first or last bin). A learned bias
`theta` (one value per bin) defines the working target

```none
log pi_theta(z) = -E(z) - theta[J(E(z))] + const.
```

After every transition the bias of the bin the chain sits in is raised by the
stochastic-approximation (SAMC) rule

```none
theta <- theta + gamma_t * (onehot(J(E_t)) - omega),  gamma_t = t0 / max(t0, t),
```

with `omega` the desired visiting distribution over the bins (uniform, `1/M`
each, by default), which pushes the chain out of bins it has visited more
often than desired. In the limit bin `j` receives the mass `omega_j` under
`pi_theta` (a flat histogram for uniform `omega`), and `theta[j]` converges,
up to an additive constant, to `log(pi(bin j) / omega_j)`. The update adds
zero in total, so the sum of a row of `theta` never changes (it stays at the
sum of `initial_bias`); this pins the additive constant and makes rows of
different chains, and values at different times, comparable. Unlike the
original Wang-Landau algorithm there is no flatness check: the gain decays
deterministically, which is what makes the stochastic approximation converge
(Liang, Liu & Carroll, 2007).

Moves inside the working target are made by an ordinary TFP kernel (MALA by
default) built by `make_inner_kernel_fn(target_log_prob_fn, step_size)`, in
the manner of TFP's step-size adapters. The step size is adapted on the log
scale, multiplicatively, toward a target acceptance probability during the
first `num_adaptation_steps` steps, with a gain that decays like
`1 / sqrt(number of windows)` (diminishing adaptation); afterwards it is
fixed. Working on `log h` keeps the step positive.

Cost. The inner kernel evaluates the energy (and its gradient, for MALA/HMC)
once per step at the proposal; the wrapper reads that value back from the
evaluation instead of evaluating the energy a second time, and verifies the
value it read against the inner kernel's own target log-density (falling back
to an explicit evaluation only if the check fails, which does not happen with
TFP's MALA and random-walk kernels). With HMC inside a compiled graph the
leapfrog evaluations happen inside a loop whose values cannot be read back;
the wrapper then evaluates the energy of the new state once (no gradient),
i.e. one forward pass per `num_leapfrog_steps` gradient evaluations. The
remaining work (binning, the bias update, the step-size rule) is a few
element-wise operations per chain.

Because `theta` and the step size change between steps, the target of the
inner kernel changes too. This is why the kernel takes a factory
`make_inner_kernel_fn(target_log_prob_fn, step_size)` rather than an inner
kernel instance, as TFP's step-size adapters do: a TFP kernel fixes its
target and step when it is built, and rewriting a built kernel's step or
target would leave the cached drift of MALA computed with the old ones,
so the Metropolis-Hastings ratio would no longer be exact. The inner kernel
is therefore rebuilt at every step with the current bias and step, and
before the next inner step the kernel results cached by the inner kernel are
brought up to date: the bias is piecewise constant in
`E`, so the cached gradient of `-E` stays valid and only the cached
`target_log_prob` is rewritten as `-E - theta_new[J(E)]`; MALA's cached drift
is linear in the step size and is rescaled when the step changes; a
`step_size` field stored in the inner results (HMC with
`store_parameters_in_results=True`) is replaced. The Metropolis-Hastings ratio
of the next step is therefore the exact one for the current target and step:
forward and reverse proposal densities both use the current step.

Sharded chains. When the rows of the state are split over the replicas of a
`tf.distribute` strategy (`chain_shard`, see `sharding`), each replica's
visit histogram of a step is summed over the replicas with the replica
context's `all_reduce` before it updates a shared bias, and the step-size
rule averages the acceptance probabilities of all chains, so that bias and
step are those of the same chains on one device; a per-chain bias needs
nothing from the other replicas.

Unbiased expectations under `pi` need importance weights
`w(z) ~ exp(theta[J(E(z))])` (self-normalised): see `importance_log_weights`.

Choosing the bins. `energy_range_from_warmup` sets `[E_lo, E_hi]` from the
energies of a short unbiased warm-up and of the chains' initial states (the
top reaches above the initial states' 95% quantile, so that the barriers
between modes, which the generator's own samples straddle, lie inside the
range), and `target_bin_probs_from_warmup` shapes the desired visiting
distribution `omega` from the same warm-up; both are the rules of the
`'wl'` sampler (`samplers/wl.py`).
"""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.common import salts
from tf_stackelberg.sampling.unnest import get_outermost
from tf_stackelberg.sampling.unnest import replace_outermost

__all__ = [
    'WangLandau',
    'WangLandauResults',
    'energy_histogram',
    'energy_range_from_warmup',
    'energy_to_bin',
    'gain_schedule',
    'importance_log_weights',
    'make_mala_kernel',
    'target_bin_probs_from_warmup',
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


def energy_to_bin(energy, energy_lo, energy_hi, num_bins):
  """Bin index `clip(floor((E - E_lo) / dE), 0, M - 1)` as int32.

  Non-finite energies go to the last bin (`+inf` and NaN) or the first
  (`-inf`), so the index is always valid for a gather.
  """
  energy = tf.convert_to_tensor(energy)
  dtype = energy.dtype
  lo = tf.cast(energy_lo, dtype)
  width = (tf.cast(energy_hi, dtype) - lo) / tf.cast(num_bins, dtype)
  position = tf.math.floor((energy - lo) / width)
  position = tf.where(tf.math.is_nan(position),
                      tf.cast(num_bins - 1, dtype), position)
  position = tf.clip_by_value(position, 0., tf.cast(num_bins - 1, dtype))
  return tf.cast(position, tf.int32)


def energy_histogram(energies, energy_lo, energy_hi, num_bins):
  """int64 `[num_bins]` counts of `J(E)` over all of `energies` (any shape)."""
  bins = energy_to_bin(tf.reshape(energies, [-1]), energy_lo, energy_hi,
                       num_bins)
  return tf.math.bincount(bins, minlength=num_bins, maxlength=num_bins,
                          dtype=tf.int64)


def energy_range_from_warmup(energies, settled_energies=None, lower_q=0.01,
                             upper_q=0.99, margin=0.25, initial_energies=None,
                             initial_q=0.95):
  """Chooses the bins' range `[E_lo, E_hi]` from the energies of a warm-up.

  ```none
  E_lo  = quantile_lower_q(settled_energies)
  E_hi' = max(quantile_upper_q(energies), quantile_initial_q(initial_energies))
  E_hi  = E_hi' + margin (E_hi' - E_lo)
  ```

  (`settled_energies` defaults to `energies`; without `initial_energies` the
  second quantile is left out). Quantiles interpolate linearly between order
  statistics and ignore non-finite values. A degenerate span (`E_hi' <=
  E_lo`) becomes `max(1, |E_lo| / 1000)`.

  The `'wl'` sampler passes the second half of an unbiased (MALA) warm-up as
  `settled_energies`, the initial states plus the whole warm-up as
  `energies`, and the initial states alone (`z ~ p0`: the generator's own
  samples) as `initial_energies`. The bottom of the range is then the low
  end of the target's typical energies: no bin lies where no chain can go,
  whose bias would only keep falling.

  The top must lie above the barriers between modes, or the flattened
  chains never cross them. The pooled quantile alone does not ensure it: the
  warm-up chains settle into the modes within a few steps, so the initial
  states are a small share of the pool (one in `W + 1` for a warm-up of `W`
  steps), and the pooled quantile stays near the energies inside the modes,
  which can end below the barriers. The generator's own samples, on the
  other hand, also fall between the modes, at the energies of the barriers
  and above. Taking `E_hi'` at least at the `initial_q` quantile of the
  initial energies alone places all but a share `1 - initial_q` of the
  starting states inside the range by construction, and the margin lifts
  the top further, since the flattened chain travels further up than the
  warm-up did. The quantile is 95% rather than 99% or the maximum because
  the energies of the generator's samples have a long upper tail (latents
  far out in the prior, samples the discriminator rejects), whose extremes
  would stretch the bins over energies no chain visits.

  Args:
    energies: float `Tensor` (any shape) of every energy seen.
    settled_energies: optional float `Tensor` (any shape) for `E_lo`.
    lower_q: quantile in `[0, 1)` for `E_lo`.
    upper_q: quantile in `(0, 1]` of `energies` for `E_hi`.
    margin: non-negative widening of the top of the range.
    initial_energies: optional float `Tensor` (any shape), the energies of
      the chains' initial states, whose `initial_q` quantile `E_hi'` must
      reach.
    initial_q: quantile in `(0, 1]` of `initial_energies`.

  Returns:
    Scalar `Tensor`s `(energy_lo, energy_hi)`, `energy_lo < energy_hi`, of
    the dtype of `energies`.

  Raises:
    ValueError: on quantiles or a margin out of range.
    tf.errors.InvalidArgumentError: (eagerly, or when run) if a set of
      energies has no finite value.

  #### Examples

  Four chains, one of which starts between the modes, and a warm-up of 100
  steps whose energies stay between 2 and 3:

  ```python
  initial = tf.constant([2., 30., 4., 3.])
  warmup = 2. + tf.random.stateless_uniform([100, 4], seed=[1, 2])
  pooled = tf.concat([initial[tf.newaxis], warmup], axis=0)
  energy_range_from_warmup(pooled, warmup[50:])
  # (2.01, 3.25): the state at 30 is 1/4 of 1% of the pool
  energy_range_from_warmup(pooled, warmup[50:], initial_energies=initial)
  # (2.01, 32.1): E_hi' = 26.1, the 95% quantile of the initial energies
  ```
  """
  if not (0. <= lower_q < 1. and 0. < upper_q <= 1. and
          0. < initial_q <= 1.):
    raise ValueError('Need 0 <= lower_q < 1, 0 < upper_q <= 1 and '
                     f'0 < initial_q <= 1, got lower_q={lower_q}, '
                     f'upper_q={upper_q} and initial_q={initial_q}.')
  if not margin >= 0.:
    raise ValueError(f'`margin` must be non-negative, got {margin}.')

  def finite(values):
    flat = tf.reshape(values, [-1])
    flat = tf.boolean_mask(flat, tf.math.is_finite(flat))
    with tf.control_dependencies([tf.debugging.assert_positive(
        tf.size(flat), message='No finite energies to set the range from.')]):
      return tf.identity(flat)

  def quantile(values, q):
    return tfp.stats.percentile(finite(values), 100. * q,
                                interpolation='linear')

  energies = tf.convert_to_tensor(energies)
  if settled_energies is None:
    settled_energies = energies
  lo = quantile(settled_energies, lower_q)
  hi = quantile(energies, upper_q)
  if initial_energies is not None:
    hi = tf.maximum(hi, tf.cast(quantile(initial_energies, initial_q),
                                hi.dtype))
  span = hi - lo
  span_ok = span > 0.
  span = tf.where(span_ok, span, tf.maximum(1., tf.abs(lo) * 1e-3))
  hi = tf.where(span_ok, hi, lo + span)
  return lo, hi + margin * span


def target_bin_probs_from_warmup(settled_energies, energy_lo, energy_hi,
                                 num_bins, visit_fraction):
  """Desired visiting distribution `omega` shaped by an unbiased warm-up.

  `omega = f * h + (1 - f) / M`: the fraction `f` (`visit_fraction`) of the
  normalised histogram `h` of `settled_energies` over the bins, mixed with
  the flat distribution. A flat `omega` alone spends as much time on the
  rarely visited high energies as on the levels that hold the target's mass,
  so that few states carry most of the importance weight; mixing in the
  unbiased histogram keeps the Kish effective sample size of the weights
  above about `f` times the number of states while the rest of the time
  still spreads evenly over all levels.

  Args:
    settled_energies: float `Tensor` (any shape) of equilibrated energies.
    energy_lo: lower end of the bins.
    energy_hi: upper end of the bins.
    num_bins: number of bins `M`.
    visit_fraction: `f` in `[0, 1]`; 0 gives `None` (flat `omega`).

  Returns:
    float `[M]` probabilities, or `None` for `f = 0`.
  """
  if not 0. <= visit_fraction <= 1.:
    raise ValueError('`visit_fraction` must be in [0, 1].')
  if visit_fraction == 0.:
    return None
  counts = tf.cast(energy_histogram(settled_energies, energy_lo, energy_hi,
                                    num_bins), settled_energies.dtype)
  return (visit_fraction * counts / tf.reduce_sum(counts) +
          (1. - visit_fraction) / num_bins)


def make_mala_kernel(target_log_prob_fn, step_size):
  """Default inner kernel: `tfp.mcmc.MetropolisAdjustedLangevinAlgorithm`."""
  return tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(
      target_log_prob_fn=target_log_prob_fn, step_size=step_size)


def _lookup_bias(theta, bin_index):
  """`theta[J]` per chain for a shared `[M]` or per-chain `[C, M]` bias."""
  if theta.shape.rank == 1:
    return tf.gather(theta, bin_index)
  return tf.gather(theta, bin_index[..., tf.newaxis], batch_dims=1)[..., 0]


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


def _accept_prob(inner_results, like):
  log_ratio = get_outermost(inner_results, 'log_accept_ratio')
  if log_ratio is None:
    return tf.ones_like(like)
  prob = tf.exp(tf.minimum(tf.cast(log_ratio, like.dtype), 0.))
  return tf.where(tf.math.is_nan(prob), tf.zeros_like(prob), prob)


# Tolerance on the sum of `target_bin_probs`.
_PROBS_SUM_TOLERANCE = 1e-4


def _static(value):
  """numpy value of `value` if it is known now, else `None`."""
  if value is None:
    return None
  if not (tf.is_tensor(value) or isinstance(value, tf.Variable)):
    try:  # Python numbers and numpy arrays, in their own precision
      return np.asarray(value, np.float64)
    except (TypeError, ValueError):  # e.g. a list of tensors
      pass
  try:
    return tf.get_static_value(tf.convert_to_tensor(value))
  except (TypeError, ValueError):
    return None


def _check_static_arguments(**arguments):
  """Checks the arguments of `WangLandau` whose values are known now.

  Raises `ValueError` naming the argument and its value for an invalid one,
  and returns the names of those whose values are not known (to be checked
  by `_argument_assertions`).
  """
  dynamic = []
  values = {}
  for name, value in arguments.items():
    if name == 'num_bins' or value is None:
      continue
    static = _static(value)
    if static is None:
      dynamic.append(name)
    else:
      values[name] = np.asarray(static, np.float64)

  def fail(name, requirement):
    value = values[name]
    shown = value.item() if value.ndim == 0 else value.tolist()
    raise ValueError(f'`{name}` must {requirement}, got {shown}.')

  for name in ('energy_lo', 'energy_hi'):
    if name in values and not np.all(np.isfinite(values[name])):
      fail(name, 'be finite')
  if ('energy_lo' in values and 'energy_hi' in values and
      not np.all(values['energy_hi'] > values['energy_lo'])):
    raise ValueError('Need `energy_hi > energy_lo`, got energy_lo='
                     f"{values['energy_lo'].tolist()} and energy_hi="
                     f"{values['energy_hi'].tolist()}.")
  for name in ('step_size', 'bias_gain_t0'):
    if name in values and not np.all(values[name] > 0.):
      fail(name, 'be positive')
  if 'target_accept_prob' in values and not np.all(
      (values['target_accept_prob'] > 0.) &
      (values['target_accept_prob'] < 1.)):
    fail('target_accept_prob', 'be in (0, 1)')
  probs = arguments['target_bin_probs']
  if probs is not None:
    shape = tf.TensorShape(probs.shape if hasattr(probs, 'shape') else
                           np.shape(probs))
    if not shape.is_compatible_with([arguments['num_bins']]):
      raise ValueError('`target_bin_probs` must have shape [num_bins] = '
                       f"[{arguments['num_bins']}], got shape {shape}.")
  if 'target_bin_probs' in values:
    probs = values['target_bin_probs']
    if not np.all(probs >= 0.):  # NaN fails too
      fail('target_bin_probs', 'be non-negative')
    if not abs(probs.sum() - 1.) <= _PROBS_SUM_TOLERANCE:
      fail('target_bin_probs',
           f'sum to 1 (within {_PROBS_SUM_TOLERANCE:g}; the sum is '
           f'{probs.sum():.6g})')
  return tuple(dynamic)


def _argument_assertions(parameters, dynamic, dtype):
  """`tf.debugging` assertions of the checks of `_check_static_arguments`.

  Args:
    parameters: `dict` of the kernel's arguments.
    dynamic: names of the arguments whose values were not known when the
      kernel was built (the others have been checked then).
    dtype: float dtype of the comparisons.

  Returns:
    list of assertion ops (empty eagerly, where they have run already).
  """
  assertions = []

  def cast(name):
    return tf.cast(parameters[name], dtype)

  for name in ('energy_lo', 'energy_hi'):
    if name in dynamic:
      assertions.append(tf.debugging.assert_all_finite(
          cast(name), message=f'`{name}` must be finite.'))
  if 'energy_lo' in dynamic or 'energy_hi' in dynamic:
    assertions.append(tf.debugging.assert_greater(
        cast('energy_hi'), cast('energy_lo'),
        message='Need `energy_hi > energy_lo`.'))
  for name in ('step_size', 'bias_gain_t0'):
    if name in dynamic:
      assertions.append(tf.debugging.assert_positive(
          cast(name), message=f'`{name}` must be positive.'))
  if 'target_accept_prob' in dynamic:
    prob = cast('target_accept_prob')
    assertions.append(tf.debugging.assert_positive(
        prob, message='`target_accept_prob` must be in (0, 1).'))
    assertions.append(tf.debugging.assert_less(
        prob, tf.ones_like(prob),
        message='`target_accept_prob` must be in (0, 1).'))
  if 'target_bin_probs' in dynamic:
    probs = cast('target_bin_probs')
    assertions.append(tf.debugging.assert_non_negative(
        probs, message='`target_bin_probs` must be non-negative.'))
    assertions.append(tf.debugging.assert_less_equal(
        tf.abs(tf.reduce_sum(probs) - 1.),
        tf.constant(_PROBS_SUM_TOLERANCE, dtype),
        message=f'`target_bin_probs` must sum to 1 (within '
        f'{_PROBS_SUM_TOLERANCE:g}).'))
  return assertions


class WangLandau(tfp.mcmc.TransitionKernel):
  """Wang-Landau / SAMC flattening of `exp(-E)` around an inner TFP kernel.

  The state is a single `Tensor` `z` of shape `[chains, ...]`; `energy_fn(z)`
  returns `[chains]` energies. The inner kernel (MALA by default) is rebuilt
  at every step with the current bias and step size, through
  `make_inner_kernel_fn(target_log_prob_fn, step_size)`. See the module
  docstring for the algorithm.

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
               num_bins=50,
               step_size=0.01,
               make_inner_kernel_fn=make_mala_kernel,
               shared_bias=True,
               bias_gain_t0=300.,
               num_bias_adaptation_steps=None,
               initial_bias=None,
               target_bin_probs=None,
               target_accept_prob=0.574,
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
    num_bins_value = tf.get_static_value(num_bins)
    if num_bins_value is None or np.ndim(num_bins_value) != 0 or int(
        num_bins_value) != num_bins_value:
      raise ValueError('`num_bins` must be a Python integer, got '
                       f'{num_bins!r}.')
    num_bins = int(num_bins_value)
    if num_bins < 2:
      raise ValueError(f'`num_bins` must be at least 2, got {num_bins}.')
    if adaptation_window < 1:
      raise ValueError('`adaptation_window` must be positive, got '
                       f'{adaptation_window}.')
    self._dynamic_checks = _check_static_arguments(
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
    return _argument_assertions(self._parameters, self._dynamic_checks,
                                dtype)

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
    return _lookup_bias(theta, tf.stop_gradient(self.bin_index(energy)))

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

      # Step-size adaptation on the log scale, window by window.
      accept_prob = _accept_prob(inner_results, energy)
      window_sum = previous.window_accept_sum + tf.reduce_mean(
          self._all_chains(accept_prob))
      window_steps = previous.window_steps + 1
      window_done = window_steps >= self.adaptation_window
      adapt = window_done & (step <= self.num_adaptation_steps)
      num_windows = previous.num_windows + tf.cast(adapt, tf.int32)
      mean_accept = window_sum / tf.cast(window_steps, dtype)
      rate = (tf.cast(self.adaptation_rate, dtype) /
              tf.sqrt(tf.cast(tf.maximum(num_windows, 1), dtype)))
      log_step_size = previous.log_step_size
      new_log_step_size = tf.where(
          adapt,
          log_step_size + rate * (mean_accept - tf.cast(
              self.target_accept_prob, dtype)),
          log_step_size)
      window_sum = tf.where(window_done, tf.zeros_like(window_sum),
                            window_sum)
      window_steps = tf.where(window_done, tf.zeros_like(window_steps),
                              window_steps)

      # Bring the inner kernel's cache in line with the new target and step.
      new_bias = self.bias(new_theta, energy)
      new_tlp = -energy - new_bias
      inner_results = _refresh_cached(
          inner_results, new_tlp, tf.exp(new_log_step_size - log_step_size),
          tf.exp(new_log_step_size))

      return next_state, WangLandauResults(
          inner_results=inner_results,
          theta=new_theta,
          visit_counts=visit_counts,
          energy=energy,
          bin_index=bin_index,
          bias=new_bias,
          step=step,
          log_step_size=new_log_step_size,
          accept_prob=accept_prob,
          window_accept_sum=window_sum,
          window_steps=window_steps,
          num_windows=num_windows,
          seed=seed)

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


def importance_log_weights(theta_or_results, bin_index=None, normalize=True):
  """Log importance weights `theta[J(E(z))]` turning `pi_theta` into `pi`.

  For any fixed bias, `E_pi[f] = E_theta[w f] / E_theta[w]` with
  `w = exp(theta[J(E)])`, so self-normalised weights of states drawn from
  `pi_theta` estimate expectations under `pi ~ exp(-E)`.

  Args:
    theta_or_results: kernel results containing `WangLandauResults`
      (directly or nested), whose `bias` field (the bias of the current
      states) is used; or a bare bias `theta` (`[M]` or `[chains, M]`) with
      `bin_index`.
    bin_index: int `[chains]` bins of the states; required with a bare
      `theta`, and used with the results' `theta` if given with results.
    normalize: if `True` return self-normalised log weights (their
      `logsumexp` is 0).

  Returns:
    float `[chains]` log weights.
  """
  if hasattr(theta_or_results, '_fields'):
    if bin_index is None:
      log_w = get_outermost(theta_or_results, 'bias')
    else:
      log_w = _lookup_bias(get_outermost(theta_or_results, 'theta'),
                           tf.cast(bin_index, tf.int32))
  else:
    if bin_index is None:
      raise ValueError('`bin_index` is required when passing a bare `theta`.')
    log_w = _lookup_bias(tf.convert_to_tensor(theta_or_results),
                         tf.cast(bin_index, tf.int32))
  if normalize:
    log_w = log_w - tf.reduce_logsumexp(log_w)
  return log_w
