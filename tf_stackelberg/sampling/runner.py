"""One entry point that runs a latent sampler on a trained GAN.

`sample_latents` draws `num_samples` latents `(k, z)` from the energy
`E(z, k) = -log p0(z) - d_c(G_k(z))` with one of the samplers of this package
and returns them with their samples `x = G_k(z)`, energies and diagnostics:

| name | chain |
|---|---|
| `'wl'` | Wang-Landau / SAMC flattening around MALA, adaptive step, importance resampling |
| `'rep'` | MALA on `E` (REP-GAN) with a fixed step |
| `'ddls'` | unadjusted Langevin on `E` (DDLS) with a fixed step |
| `'mh'` | independence Metropolis-Hastings with prior proposals (MH-GAN) |
| `'none'` | no chain: `z ~ N(0, I)`, `k` uniform, i.e. the generator itself |

One chain per returned sample: `num_samples` chains run `num_steps`
transitions in parallel and their final states are returned. For `'wl'` each
chain instead keeps one state of the second half of its trajectory, drawn
with probability proportional to its importance weight `exp(theta[J(E)])`,
and `resample=True` draws `num_samples` of these in proportion to the
chains' total weights, which targets `exp(-E)`.

With several generators and `joint=True` the generator index is part of the
state and moves by Metropolis-Hastings (`JointGeneratorKernel`; for `'mh'`
the proposal draws `k` together with `z`), so the chains target
`pi(k, z) ~ exp(-E(z, k))`: a chain can leave a generator that makes poor
samples. With `joint=False` each chain keeps the `k` it was given (uniformly
at random), so the output has a uniform generator index and
`z | k ~ exp(-E(z, k))`.

Execution. The transitions run inside a `tf.while_loop` in one `tf.function`
(XLA-compiled with `jit_compile=True`) per chunk of `chunk_steps` steps; the
state and kernel results are handed from chunk to chunk, and every step
draws its stateless seed by folding the global step index into the run's
seed, so the chain does not depend on how it is cut into chunks. The same
seed gives the same samples for a given `jit_compile`; compiled and
uncompiled runs differ, because XLA generates stateless random numbers with
another algorithm. Called eagerly, the function returns numpy values; called
while a `tf.function` is being traced (e.g. when exported), it builds the
whole run in that graph and returns tensors (there is no progress callback
then).

Cost accounting. `diagnostics['num_energy_evaluations']` counts latent points
passed through `G` and `D` (forward passes of the energy, with or without a
gradient), summed over chains, including the bootstrap evaluations and any
warm-up; `num_gradient_evaluations` counts those that also back-propagate.
Per chain and step: `'rep'`, `'ddls'`, `'wl'` make one gradient evaluation,
plus one for the generator move in joint mode; `'mh'` makes one forward
evaluation (also in joint mode). Returning `x` costs one more pass of `G`
(not of `D`) on the returned latents, not counted.
"""

import collections
import functools
import time

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.sampling.baselines import make_ddls_kernel
from tf_stackelberg.sampling.baselines import make_mh_kernel
from tf_stackelberg.sampling.baselines import make_rep_kernel
from tf_stackelberg.sampling.energy import make_energy_fn
from tf_stackelberg.sampling.joint import JointGeneratorKernel
from tf_stackelberg.sampling.wang_landau import WangLandau
from tf_stackelberg.sampling.wang_landau import current_field
from tf_stackelberg.sampling.wang_landau import find_wang_landau_results
from tf_stackelberg.sampling.wang_landau import energy_to_bin
from tf_stackelberg.sampling.wang_landau import importance_log_weights

__all__ = [
    'SAMPLERS',
    'SampleResult',
    'sample_latents',
]

SAMPLERS = ('wl', 'rep', 'ddls', 'mh', 'none')

SampleResult = collections.namedtuple(
    'SampleResult', ['z', 'k', 'x', 'energy', 'diagnostics'])
SampleResult.__doc__ = """What `sample_latents` returns.

Attributes:
  z: float `[num_samples, latent_dim]` latents.
  k: int32 `[num_samples]` generator indices.
  x: `generate_fn(z, k)`, the samples.
  energy: float `[num_samples]`, `E(z, k)`.
  diagnostics: `dict` of numpy arrays and Python numbers (tensors when built
    inside a `tf.function`); see `sample_latents`.
"""

# The automatic Wang-Landau range (see `energy_range_from_warmup`): from the
# 1% quantile of the energies of the second half of the warm-up to the 99%
# quantile of all energies seen (initial states included), widened upward by
# a quarter.
_RANGE_LOWER_Q = 1.
_RANGE_UPPER_Q = 99.
_RANGE_MARGIN = 0.25


def _current_energy(results):
  wl = find_wang_landau_results(results)
  if wl is not None:
    return wl.energy
  return -current_field(results, 'target_log_prob')


def _current_accepted(results, like):
  is_accepted = current_field(results, 'is_accepted')
  if is_accepted is None:  # unadjusted Langevin moves every chain
    return tf.ones_like(like)
  return tf.cast(is_accepted, like.dtype)


def _generator_changed(old_state, new_state, like):
  """Fraction of chains whose generator index changed (joint states only)."""
  if not isinstance(new_state, (list, tuple)):
    return tf.zeros([], like.dtype)
  return tf.reduce_mean(tf.cast(tf.not_equal(old_state[0], new_state[0]),
                                like.dtype))


class _Compiler(object):
  """Wraps functions in `tf.function` when running eagerly."""

  def __init__(self, jit_compile):
    self._eager = tf.executing_eagerly()
    self._jit_compile = jit_compile
    self._cache = {}

  @property
  def eager(self):
    return self._eager

  def __call__(self, key, fn):
    if not self._eager:
      return fn
    if key not in self._cache:
      self._cache[key] = tf.function(fn, jit_compile=self._jit_compile,
                                     autograph=False)
    return self._cache[key]


_Reservoir = collections.namedtuple('_Reservoir',
                                    ['log_total', 'state', 'energy'])


def _empty_reservoir(state, energy):
  return _Reservoir(tf.fill(tf.shape(energy), tf.constant(-np.inf,
                                                          energy.dtype)),
                    state, energy)


def _select_rows(take, new, old):
  take = tf.reshape(take, tf.concat(
      [tf.shape(take), tf.ones([tf.rank(new) - 1], tf.int32)], axis=0))
  return tf.where(take, new, old)


def _reservoir_update(reservoir, state, energy, log_weight, seed):
  """Weighted reservoir of size one per chain.

  After the update, the kept state is any one of the states offered so far
  with probability proportional to its weight, and `log_total` is the log of
  the summed weights (Chao's scheme: keep the new state with probability
  `w_t / W_t`).
  """
  log_total = tf.reduce_logsumexp(
      tf.stack([reservoir.log_total, log_weight]), axis=0)
  prob = tf.where(tf.math.is_finite(log_total),
                  tf.exp(log_weight - log_total), tf.zeros_like(log_total))
  take = tf.random.stateless_uniform(tf.shape(prob), seed=seed,
                                     dtype=prob.dtype) < prob
  return _Reservoir(
      log_total,
      tf.nest.map_structure(functools.partial(_select_rows, take), state,
                            reservoir.state),
      tf.where(take, energy, reservoir.energy))


def _run_steps(kernel, state, results, seed, start, num_steps,
               reservoir=None, collect_from=None, bias_fn=None):
  """`num_steps` transitions in a `tf.while_loop`; traces per step.

  With a `reservoir` (Wang-Landau only), every state of a step whose index
  (counted from the start of the phase) is at least `collect_from` is
  offered to the chain's weighted reservoir with weight
  `exp(bias_fn(theta, E))` = `exp(theta[J(E)])`, `theta` being the bias the
  state was drawn under.

  Returns `(state, results, energies [steps, chains], accept [steps],
  generator_changed [steps], reservoir)`.
  """
  energy0 = _current_energy(results)
  dtype = energy0.dtype
  energies = tf.TensorArray(dtype, size=num_steps,
                            element_shape=energy0.shape)
  accepts = tf.TensorArray(dtype, size=num_steps, element_shape=[])
  k_accepts = tf.TensorArray(dtype, size=num_steps, element_shape=[])

  def body(i, state, results, energies, accepts, k_accepts, reservoir):
    step = start + i
    step_seed = tf.random.experimental.stateless_fold_in(
        seed, tf.cast(step, seed.dtype))
    new_state, new_results = kernel.one_step(state, results, seed=step_seed)
    energy = _current_energy(new_results)
    energies = energies.write(i, energy)
    accepts = accepts.write(
        i, tf.reduce_mean(_current_accepted(new_results, energy)))
    k_accepts = k_accepts.write(i, _generator_changed(state, new_state,
                                                      energy))
    if reservoir:
      log_weight = bias_fn(find_wang_landau_results(results).theta, energy)
      log_weight = tf.where(step >= collect_from, log_weight,
                            tf.fill(tf.shape(log_weight),
                                    tf.constant(-np.inf, dtype)))
      reservoir = _reservoir_update(
          reservoir, new_state, energy, log_weight,
          tf.random.experimental.stateless_fold_in(step_seed, 1))
    return (i + 1, new_state, new_results, energies, accepts, k_accepts,
            reservoir)

  # `while_loop` takes no `None`; an empty tuple stands for no reservoir.
  _, state, results, energies, accepts, k_accepts, reservoir = tf.while_loop(
      lambda i, *_: i < num_steps, body,
      (tf.constant(0), state, results, energies, accepts, k_accepts,
       () if reservoir is None else reservoir),
      maximum_iterations=num_steps)
  return (state, results, energies.stack(), accepts.stack(),
          k_accepts.stack(), reservoir or None)


def _warmup_energy_range(energies, settled_energies):
  """`[E_lo, E_hi]` as `energy_range_from_warmup`, in TensorFlow."""
  def finite(values):
    flat = tf.reshape(values, [-1])
    return tf.boolean_mask(flat, tf.math.is_finite(flat))

  lo = tfp.stats.percentile(finite(settled_energies), _RANGE_LOWER_Q,
                            interpolation='linear')
  hi = tfp.stats.percentile(finite(energies), _RANGE_UPPER_Q,
                            interpolation='linear')
  span = hi - lo
  span_ok = span > 0.
  span = tf.where(span_ok, span, tf.maximum(1., tf.abs(lo) * 1e-3))
  hi = tf.where(span_ok, hi, lo + span)
  return lo, hi + _RANGE_MARGIN * span


def _kish_ess(log_weights):
  log_w = log_weights - tf.reduce_logsumexp(log_weights)
  return tf.exp(-tf.reduce_logsumexp(2. * log_w))


def _normalised_log_weights(log_w, k, num_generators, group_by_generator):
  """Self-normalised log weights of the chains' samples.

  With `group_by_generator` (chains of fixed generator), the weights are
  normalised within each generator and every generator gets total mass
  `1 / K`, so the resampled generator index stays uniform.
  """
  if group_by_generator and num_generators > 1:
    norm = tf.math.unsorted_segment_max(log_w, k, num_generators)
    norm = tf.where(tf.math.is_finite(norm), norm, tf.zeros_like(norm))
    shifted = tf.exp(log_w - tf.gather(norm, k))
    totals = tf.math.unsorted_segment_sum(shifted, k, num_generators)
    log_w = (log_w - tf.gather(norm, k) - tf.math.log(tf.gather(totals, k)))
  return log_w - tf.reduce_logsumexp(log_w)


def _histogram(energies, lo, hi, num_bins):
  bins = energy_to_bin(tf.reshape(energies, [-1]), lo, hi, num_bins)
  return tf.math.bincount(bins, minlength=num_bins, maxlength=num_bins,
                          dtype=tf.int64)


def _finite_min_max(values):
  flat = tf.reshape(values, [-1])
  finite = tf.math.is_finite(flat)
  big = tf.constant(np.finfo(np.float32).max, flat.dtype)
  lo = tf.reduce_min(tf.where(finite, flat, big))
  hi = tf.reduce_max(tf.where(finite, flat, -big))
  return lo, hi


def _energy_ess(trace):
  """Autocorrelation ESS of the energy trace's second half, summed over chains."""
  num_steps = trace.shape[0]
  half = trace[num_steps // 2:]
  if half.shape[0] < 4:
    return tf.cast(tf.size(half), trace.dtype)
  ess = tfp.mcmc.effective_sample_size(half,
                                       filter_beyond_positive_pairs=True)
  # A chain that never moved has no defined autocorrelation: count it once.
  ess = tf.where(tf.math.is_finite(ess), ess, tf.ones_like(ess))
  return tf.reduce_sum(ess)


def _to_output(value, eager):
  if not eager or not tf.is_tensor(value):
    return value
  value = value.numpy()
  if value.ndim == 0:
    return value.item()
  return value


def sample_latents(sampler, generate_fn, logit_fn, latent_dim, num_generators,
                   num_samples, num_steps, seed, *, step_size=0.01, joint=True,
                   num_bins=50, t0=300.0, energy_range=None, resample=True,
                   calibration=None, chunk_steps=None, progress_callback=None,
                   jit_compile=True, num_warmup_steps=None, shared_bias=True,
                   num_adaptation_steps=None, target_accept_prob=0.574,
                   generator_move_every=1, collect_fraction=0.5,
                   warmup_visit_fraction=0.5, freeze_bias=True,
                   dtype=tf.float32):
  """Draws latents of a trained GAN with a latent-space MCMC sampler.

  Args:
    sampler: one of `SAMPLERS`: `'wl'`, `'rep'`, `'ddls'`, `'mh'`, `'none'`.
    generate_fn: callable `(z, k) -> x`, `z` float `[B, latent_dim]`, `k`
      int32 `[B]`.
    logit_fn: callable `x -> [B]` discriminator logits.
    latent_dim: Python int, dimension of `z`.
    num_generators: Python int `K`.
    num_samples: Python int, number of chains and of returned samples.
    num_steps: Python int, transitions per chain (for `'wl'` this includes
      the warm-up that sets the energy range, so every sampler gets the same
      budget); ignored by `'none'`.
    seed: stateless seed, int `[2]`.
    step_size: Langevin step `s` (`'rep'`, `'ddls'`; the initial step of
      `'wl'` and of its warm-up).
    joint: move the generator index too (only matters for `K > 1`).
    num_bins: Wang-Landau bins `M`; also the bins of the reported energy
      histogram of the other samplers.
    t0: SAMC gain constant, gain `t0 / max(t0, t)`.
    energy_range: `(E_lo, E_hi)` of the Wang-Landau bins, or `None` to set
      it from a MALA warm-up on the same chains: `E_lo` = 1% quantile of the
      energies of the second half of the warm-up, `E_hi` = 99% quantile of
      every energy seen (initial states included) plus a quarter of
      `E_hi - E_lo` (see `energy_range_from_warmup`).
    resample: for `'wl'`, return `num_samples` draws with replacement from
      the chains' weighted samples (below) with probabilities proportional to
      the chains' total weights (normalised per generator when
      `joint=False`): samples targeting `exp(-E)` rather than the flattened
      law. With `False` the chains' weighted samples are returned, one per
      chain, with `diagnostics['log_weights']`.
    calibration: optional `(a, b)` of `d_c = a * d + b` (`fit_calibration`).
    chunk_steps: transitions per compiled call (`None`: all in one).
    progress_callback: optional `callable(steps_done, num_steps)` called
      after every chunk (eager execution only).
    jit_compile: compile the chunks with XLA.
    num_warmup_steps: warm-up length for the automatic Wang-Landau range
      (default `max(1, num_steps // 5)`); unused with `energy_range`.
    shared_bias: one Wang-Landau bias for all chains (else one per chain).
    num_adaptation_steps: Wang-Landau steps during which the step size is
      adapted (default: until the collection of weighted samples starts,
      see `collect_fraction`).
    target_accept_prob: acceptance the Wang-Landau step size is tuned to.
    generator_move_every: in joint mode, make a generator move every this
      many steps (gradient samplers; each costs one evaluation).
    collect_fraction: the last this fraction of the Wang-Landau steps feed
      the weighted samples. Every state `x_t` visited there is offered to its
      chain's weighted reservoir with weight `w_t = exp(theta_t(E(x_t)))`,
      `theta_t` being the bias it was drawn under (the SAMC estimator of
      Liang et al., 2007); the reservoir keeps one of them with probability
      `w_t / sum w` and the chain's total weight `sum w`. This uses the whole
      trajectory instead of the final state alone, at the memory cost of one
      extra state per chain.
    freeze_bias: stop adapting the Wang-Landau bias when the collection of
      weighted samples starts (the step size has stopped adapting before):
      the collected states then come from one fixed, calibrated kernel for
      `pi_theta`, for which `exp(theta[J(E)])` are exact importance weights.
      With `False` the bias keeps adapting with the decaying SAMC gain.
    warmup_visit_fraction: with an automatic range, the desired visiting
      distribution of the Wang-Landau bins (`target_bin_probs`) mixes this
      fraction of the warm-up's own energy histogram (second half) with a
      flat one. A flat histogram alone spends as much time on the rarely
      visited high energies as on the levels that hold the target's mass,
      so that few states carry most of the importance weight; mixing in the
      unbiased histogram keeps the Kish effective sample size above about
      this fraction of the samples while the rest of the time still spreads
      evenly over all levels. 0 gives the flat histogram.
    dtype: float dtype of the latents.

  Returns:
    `SampleResult(z, k, x, energy, diagnostics)`. `diagnostics` holds:

    * `acceptance_rate`: mean acceptance of the latent moves over all steps
      and chains (1 for `'ddls'`, NaN for `'none'`);
      `acceptance_per_step` `[num_steps]`; `generator_acceptance_rate`: mean
      fraction of chains whose generator index changes in a step (0 unless
      joint).
    * `energy_trace` `[num_steps]`: mean energy over chains after each step;
      `energy_trace_quantiles` `[num_steps, 3]`: its 5%, 50%, 95% quantiles.
    * `energy_min`, `energy_max`, `energy_q01`, `energy_q99`: over every
      state visited (initial states included; for `'wl'` the warm-up too).
    * `energy_histogram` `[num_bins]` int64 and `bin_edges` `[num_bins + 1]`:
      visits of the main phase per bin; for `'wl'` its own bins (energies
      outside the range counted in the end bins, as `J` does), for the others
      `num_bins` equal bins between the visited extremes.
    * `ess`: Kish effective sample size `(sum w)^2 / sum w^2` of the chains'
      total weights for `'wl'`, i.e. of the weighted samples that are
      resampled; `num_samples` for the other samplers (their final states
      come from independent chains, unweighted).
      `energy_ess`: `tfp.mcmc.effective_sample_size` of the energy trace over
      the second half of the main phase, summed over chains (a mixing
      measure).
    * `step_size`: final step size (adapted for `'wl'`).
    * `num_energy_evaluations`, `num_gradient_evaluations`: see the module
      docstring. `num_steps`, `num_warmup_steps`, `wall_time` (seconds,
      eager only).
    * for `'wl'`: `theta` (final bias), `visit_counts`, `energy_range`
      `[2]`, `log_weights` `[num_samples]`: normalised log total weights of
      the chains' weighted samples (before any resampling).

  Raises:
    ValueError: on an unknown sampler or invalid sizes.
  """
  if sampler not in SAMPLERS:
    raise ValueError('`sampler` must be one of {}, got {!r}.'.format(
        SAMPLERS, sampler))
  for name, value in (('latent_dim', latent_dim),
                      ('num_generators', num_generators),
                      ('num_samples', num_samples), ('num_bins', num_bins)):
    if int(value) < 1:
      raise ValueError('`{}` must be positive, got {}.'.format(name, value))
  if sampler != 'none' and int(num_steps) < 1:
    raise ValueError('`num_steps` must be positive, got {}.'.format(num_steps))
  if chunk_steps is not None and int(chunk_steps) < 1:
    raise ValueError('`chunk_steps` must be positive.')
  if not 0. < collect_fraction <= 1.:
    raise ValueError('`collect_fraction` must be in (0, 1].')
  if not 0. <= warmup_visit_fraction <= 1.:
    raise ValueError('`warmup_visit_fraction` must be in [0, 1].')
  if energy_range is not None:
    energy_range = tuple(float(e) for e in energy_range)
    if len(energy_range) != 2 or not energy_range[0] < energy_range[1]:
      raise ValueError('`energy_range` must be two increasing numbers.')
  latent_dim = int(latent_dim)
  num_generators = int(num_generators)
  num_samples = int(num_samples)
  num_steps = int(num_steps) if sampler != 'none' else 0
  num_bins = int(num_bins)
  dtype = tf.as_dtype(dtype)

  start_time = time.time()
  compiler = _Compiler(jit_compile)
  eager = compiler.eager
  energy_fn = make_energy_fn(generate_fn, logit_fn, calibration)
  joint = bool(joint) and num_generators > 1

  seed = tfp.random.sanitize_seed(seed)
  (z_seed, k_seed, warmup_seed, chain_seed,
   resample_seed) = tfp.random.split_seed(seed, n=5, salt='sample_latents')
  z = tf.random.stateless_normal([num_samples, latent_dim], seed=z_seed,
                                 dtype=dtype)
  k = tf.random.stateless_uniform([num_samples], seed=k_seed, minval=0,
                                  maxval=num_generators, dtype=tf.int32)

  diagnostics = {'num_steps': num_steps}
  if sampler == 'none':
    energy = compiler('energy', energy_fn)(z, k)
    x = generate_fn(z, k)
    lo, hi = _finite_min_max(energy)
    hi = tf.where(hi > lo, hi, lo + 1.)
    q = tfp.stats.percentile(energy, [1., 99.], interpolation='linear')
    nan = tf.constant(float('nan'), dtype)
    diagnostics.update(
        acceptance_rate=nan,
        acceptance_per_step=tf.zeros([0], dtype),
        generator_acceptance_rate=tf.zeros([], dtype),
        energy_trace=tf.zeros([0], dtype),
        energy_trace_quantiles=tf.zeros([0, 3], dtype),
        energy_min=lo, energy_max=hi, energy_q01=q[0], energy_q99=q[1],
        energy_histogram=_histogram(energy, lo, hi, num_bins),
        bin_edges=tf.linspace(lo, hi, num_bins + 1),
        ess=tf.cast(num_samples, dtype), energy_ess=tf.cast(num_samples, dtype),
        step_size=tf.zeros([], dtype),
        num_energy_evaluations=num_samples, num_gradient_evaluations=0,
        num_warmup_steps=0)
    return _finish(SampleResult(z, k, x, energy, diagnostics), eager,
                   start_time)

  # ------------------------------------------------------------ the kernels
  def latent_kernel_fn(name, lo=None, hi=None):
    if name == 'rep':
      return lambda e: make_rep_kernel(e, step_size)
    if name == 'ddls':
      return lambda e: make_ddls_kernel(e, step_size)
    if name == 'mh':
      return make_mh_kernel
    adapt = num_adaptation_steps
    if adapt is None:
      adapt = collect_start
    return lambda e: WangLandau(
        e, lo, hi, num_bins=num_bins, step_size=step_size,
        shared_bias=shared_bias, bias_gain_t0=t0,
        target_accept_prob=target_accept_prob, num_adaptation_steps=adapt,
        target_bin_probs=bin_probs,
        num_bias_adaptation_steps=collect_start if freeze_bias else None)

  def build_kernel(name, k_fixed, lo=None, hi=None):
    if joint and name == 'mh':
      return make_mh_kernel(energy_fn, num_generators=num_generators)
    make_kernel = latent_kernel_fn(name, lo, hi)
    if joint:
      return JointGeneratorKernel(energy_fn, num_generators, make_kernel,
                                  generator_move_every=generator_move_every)
    return make_kernel(lambda z_: energy_fn(z_, k_fixed))

  def initial_state(z, k):
    return [k, z] if joint else z

  def split_state(state, k_fixed):
    if joint:
      return state[1], state[0]
    return state, k_fixed

  def run_phase(name, state, k_fixed, phase_seed, num, steps_before, lo=None,
                hi=None, collect_from=None):
    """Bootstraps the phase's kernel and runs `num` steps chunk by chunk.

    With `collect_from`, the states of the phase's steps from that index on
    feed the weighted reservoirs (Wang-Landau).
    """
    key = (name, None if lo is None else 'range')

    def bootstrap(state, k_fixed, lo, hi):
      return build_kernel(name, k_fixed, lo, hi).bootstrap_results(state)

    results = compiler(key + ('bootstrap',), bootstrap)(state, k_fixed, lo, hi)
    init_energy = _current_energy(results)
    reservoir = None
    if collect_from is not None:
      reservoir = _empty_reservoir(state, init_energy)
      collect_from = tf.constant(collect_from, tf.int32)
    chunk = num if chunk_steps is None else min(int(chunk_steps), num)
    traces = []
    done = 0
    while done < num:
      n = min(chunk, num - done)

      def run(state, results, k_fixed, seed, start, lo, hi, reservoir,
              collect_from, n=n):
        kernel = build_kernel(name, k_fixed, lo, hi)
        bias_fn = None
        if lo is not None:
          def bias_fn(theta, energy):
            return importance_log_weights(
                theta, energy_to_bin(energy, lo, hi, num_bins),
                normalize=False)
        return _run_steps(kernel, state, results, seed, start, n, reservoir,
                          collect_from, bias_fn)

      state, results, energies, accepts, k_accepts, reservoir = compiler(
          key + (n,), run)(state, results, k_fixed, phase_seed,
                           tf.constant(done, tf.int32), lo, hi, reservoir,
                           collect_from)
      traces.append((energies, accepts, k_accepts))
      done += n
      if progress_callback is not None and eager:
        progress_callback(steps_before + done, num_steps)
    energies, accepts, k_accepts = (tf.concat(t, axis=0)
                                    for t in zip(*traces))
    return (state, results, init_energy, energies, accepts, k_accepts,
            reservoir)

  # ------------------------------------------------------------- the phases
  state = initial_state(z, k)
  k_fixed = k
  num_warmup = 0
  gradient = sampler in ('wl', 'rep', 'ddls')

  def phase_cost(n):
    # bootstrap + the steps (+ generator moves in joint mode).
    moves = 0
    if joint and sampler != 'mh':
      moves = -(-n // int(generator_move_every))
    return num_samples * (1 + n + moves)

  visited = []
  num_evaluations = 0
  bin_probs = None
  collect_start = None
  if sampler == 'wl':
    if energy_range is None:
      num_warmup = (max(1, num_steps // 5) if num_warmup_steps is None
                    else int(num_warmup_steps))
      if not 0 < num_warmup < num_steps:
        raise ValueError('Need 0 < num_warmup_steps < num_steps for an '
                         'automatic energy range.')
      (state, _, init_energy, warm_energies, warm_accepts, warm_k,
       _) = run_phase('rep', state, k_fixed, warmup_seed, num_warmup, 0)
      num_evaluations += phase_cost(num_warmup)
      visited += [init_energy[tf.newaxis], warm_energies]
      settled = warm_energies[num_warmup // 2:]
      lo, hi = _warmup_energy_range(
          tf.concat([init_energy[tf.newaxis], warm_energies], axis=0),
          settled)
      if warmup_visit_fraction > 0.:
        counts = tf.cast(_histogram(settled, lo, hi, num_bins), dtype)
        bin_probs = (warmup_visit_fraction * counts / tf.reduce_sum(counts) +
                     (1. - warmup_visit_fraction) / num_bins)
    else:
      lo = tf.constant(energy_range[0], dtype)
      hi = tf.constant(energy_range[1], dtype)
    lo = tf.cast(lo, dtype)
    hi = tf.cast(hi, dtype)
    num_wl = num_steps - num_warmup
    collect_start = int(num_wl * (1. - collect_fraction))
    (state, results, init_energy, energies, accepts, k_accepts,
     reservoir) = run_phase('wl', state, k_fixed, chain_seed, num_wl,
                            num_warmup, lo, hi, collect_from=collect_start)
    num_evaluations += phase_cost(num_steps - num_warmup)
    if num_warmup:
      accepts = tf.concat([warm_accepts, accepts], axis=0)
      k_accepts = tf.concat([warm_k, k_accepts], axis=0)
      energies_all_steps = tf.concat([warm_energies, energies], axis=0)
    else:
      energies_all_steps = energies
    visited += [init_energy[tf.newaxis], energies]
  else:
    (state, results, init_energy, energies, accepts, k_accepts,
     _) = run_phase(sampler, state, k_fixed, chain_seed, num_steps, 0)
    num_evaluations += phase_cost(num_steps)
    energies_all_steps = energies
    visited += [init_energy[tf.newaxis], energies]

  z, k = split_state(state, k_fixed)
  energy = _current_energy(results)
  visited = tf.concat(visited, axis=0)
  v_lo, v_hi = _finite_min_max(visited)
  v_q = tfp.stats.percentile(tf.reshape(visited, [-1]), [1., 99.],
                             interpolation='linear')

  wl = find_wang_landau_results(results)
  if wl is not None:
    edges_lo, edges_hi = lo, hi
    final_step = tf.exp(wl.log_step_size)
  else:
    edges_lo, edges_hi = _finite_min_max(energies)
    edges_hi = tf.where(edges_hi > edges_lo, edges_hi, edges_lo + 1.)
    final_step = tf.constant(0. if sampler == 'mh' else step_size, dtype)

  diagnostics.update(
      acceptance_rate=tf.reduce_mean(accepts),
      acceptance_per_step=accepts,
      generator_acceptance_rate=tf.reduce_mean(k_accepts),
      energy_trace=tf.reduce_mean(energies_all_steps, axis=1),
      energy_trace_quantiles=tf.transpose(tfp.stats.percentile(
          energies_all_steps, [5., 50., 95.], axis=1,
          interpolation='linear')),
      energy_min=v_lo, energy_max=v_hi, energy_q01=v_q[0], energy_q99=v_q[1],
      energy_histogram=_histogram(energies, edges_lo, edges_hi, num_bins),
      bin_edges=tf.linspace(edges_lo, edges_hi, num_bins + 1),
      energy_ess=_energy_ess(energies),
      step_size=final_step,
      num_energy_evaluations=num_evaluations,
      num_gradient_evaluations=num_evaluations if gradient else 0,
      num_warmup_steps=num_warmup)

  if wl is not None:
    # The chains' weighted reservoirs: one state per chain, drawn from the
    # collected part of its trajectory with probability ~ exp(theta[J(E)]),
    # and the chain's total weight.
    z, k = split_state(reservoir.state, k_fixed)
    energy = reservoir.energy
    log_w = _normalised_log_weights(reservoir.log_total, k, num_generators,
                                    group_by_generator=not joint)
    diagnostics.update(theta=wl.theta, visit_counts=wl.visit_counts,
                       energy_range=tf.stack([lo, hi]), log_weights=log_w,
                       ess=_kish_ess(log_w))
    if resample:
      index = tf.random.stateless_categorical(
          log_w[tf.newaxis], num_samples, seed=resample_seed,
          dtype=tf.int32)[0]
      z, k, energy = (tf.gather(t, index) for t in (z, k, energy))
  else:
    diagnostics['ess'] = tf.cast(num_samples, dtype)

  x = generate_fn(z, k)
  return _finish(SampleResult(z, k, x, energy, diagnostics), eager, start_time)


def _finish(result, eager, start_time):
  diagnostics = {key: _to_output(value, eager)
                 for key, value in result.diagnostics.items()}
  if eager:
    diagnostics['wall_time'] = time.time() - start_time
    return SampleResult(*(_to_output(t, eager) for t in result[:4]),
                        diagnostics=diagnostics)
  return result._replace(diagnostics=diagnostics)
