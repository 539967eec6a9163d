"""`'wl'`: Wang-Landau / SAMC flattening around MALA, importance-resampled.

Every chain makes `num_steps` transitions in all, in two phases:

1. Warm-up (`W = num_warmup_steps`, default `max(1, num_steps // 5)`): MALA
   on `exp(-E)` with the step `s` (`rep`'s kernel), on the same chains.
2. Range. `E_lo` is the 1% quantile of the energies of the second half of
   the warm-up. `E_hi` is the larger of the 99% quantile of every energy
   seen (initial states and warm-up pooled) and the 95% quantile of the
   initial states' energies alone, plus `range_margin` (default 0.75) times
   `E_hi - E_lo` (`energy_range_from_warmup`). The initial states are the
   generator's own samples (`z ~ p0`), some of which lie between the
   modes, at or above the barriers. The warm-up chains fall into the modes
   within a few steps, so in the pool the initial states are a small share
   (one in `W + 1`), and the pooled quantile alone can end below the
   barriers, which the flattened chains then do not cross. On the 2-D
   four-mode toy of `tests/test_sampling_health.py` (1000 chains, 800
   steps, flat `omega`, margin 0.25) it ends at 9.9, below passes at 10.0
   and 10.1, and the mode masses come out 7 standard errors off with a Kish
   size of 808 of 1000; with the initial states' own quantile the range
   ends at 16.0 and the masses are within 3 standard errors. All but 5% of the starting
   states thus lie inside the range by construction (the 95% rather than
   the 99% quantile, because the generator's energies have a long upper
   tail, whose extremes would stretch the bins over energies no chain
   visits).
3. Desired bin probabilities `omega = f h + (1 - f) / M`, `h` the normalised
   histogram of the second half of the warm-up over the `M` bins,
   `f = warmup_visit_fraction` (`target_bin_probs_from_warmup`; default 0,
   flat: see "An unbiased default" below).
   A fixed `energy_range` skips steps 1-3 (flat `omega`, `W = 0`).
4. Flattened run of `N = num_steps - W` steps of the `WangLandau` kernel
   (MALA inside, initial step `s`) over `[E_lo, E_hi]`: the SAMC bias
   `theta <- theta + t0 / max(t0, t) (onehot(J(E_t)) - omega)` and the
   step size (toward acceptance 0.574) adapt during the first
   `C = floor(N (1 - collect_fraction))` steps (default `collect_fraction`
   0.25, so `C = 3 N / 4`), then both are frozen: the
   last `N - C` steps are an ordinary MALA chain for the fixed law
   `pi_theta ~ exp(-E - theta[J(E)])`.
5. Reservoir. Each state `x_t`, `t > C`, is offered to its chain's weighted
   reservoir with the exact importance weight `w_t = exp(theta[J(E(x_t))])`
   toward `pi ~ exp(-E)`; the reservoir keeps one of them with probability
   `w_t / W_c` and the chain's total weight `W_c = sum_t w_t`
   (`estimators.update_reservoir`).
6. Resampling. `num_samples` draws, with replacement, of the chains' kept
   states with probabilities `W_c / sum W` (normalised per generator, so
   that each keeps total mass `1 / K`, when `k` does not move): each draw
   is then any collected state `x_{c,t}` with probability
   `w_{c,t} / sum w`, the self-normalised importance sampling estimator of
   `exp(-E)` over the whole collected part of every trajectory.
   `resample=False` returns the kept states with their normalised log
   weights instead.

On a bounded prior (`U[-1, 1]^D`) MALA's proposals outside the box have
energy `+inf` and are rejected, in the warm-up and in the flattened run
(whose biased target at such a proposal is `-inf - theta[M - 1]`). The
chains start in the box, so every energy they hold is finite, and so is the
automatic range.

The same function serves `sample_latents` and the exported `mcmc_sample`
endpoint. It was chosen by measurement on the grid benchmark
(`tools/benchmark_sampling.py`, seed 0, 10,000 samples x 640 steps) over the
estimator the endpoint used before (flat `omega`, a bias that never
freezes, the chains' final states resampled by `exp(theta[J(E)])`): this one
gives 25 modes, 56.2% high quality, reverse KL 0.123 (Kish size of the
weights 8,098 of 10,000), the former 25 / 56.2% / 0.267 with as many chains
(only 3,270 distinct states among the 10,000 draws), REP-GAN
25 / 55.2% / 0.255. Those figures predate the initial states' quantile in
the range rule (step 2), which raises `E_hi` there from 11.2 to 12.3 and
gives 25 / 55.4% / 0.110 (Kish size 7,876). Freezing makes the weights
exact, and the trajectory reservoirs and the shaped `omega` keep the
weights' effective sample size high.

An unbiased default. The importance weights are exact for the frozen bias,
but the estimate is right only if the chains have spread over the modes as
`pi_theta` spreads them by the time they are collected: the weights depend on
the energy alone and cannot move mass between modes of equal energies. The
chains start from the generator's samples, whose shares of the modes are the
generator's, and only crossings of the barriers change them. The former
defaults (`warmup_visit_fraction` 0.5, `collect_fraction` 0.5, margin 0.25)
kept the chains inside the modes for half of their visits, left them half
of the flattened run to cross, and ended the range a little above the
passes; on the 2-D toys of `tests/test_wl_unbiased.py` (2,000 chains of 640
steps) the mode masses came out 5 to 13 standard errors off. Flat visits, a
collection over the last quarter and a range reaching 0.75 of its span above
the starting energies bring them within about 2.5 standard errors, at the
price of a lower Kish size (about 28% of the chains rather than 92%).
docs/design.md, section 14.4, has the measurements.

The unweighted output. The chains' final states, not reweighted, are also
returned (`extra`: `unweighted_z`, `unweighted_k`, `unweighted_energy`):
draws of the flattened law `pi_theta`, which is what the WL-GAN reference
code returns, for a side-by-side comparison with the reweighted draws.

Under a strategy (`sharding`) the warm-up runs in chunks per call, as the
other samplers do, and each step of the flattened run is one call, whose
shared bias and step size pool the chains of all replicas
(`WangLandau(chain_shard=...)`); the range, `omega`, the weights and the
resampling are computed from the merged outputs of the phases.

Cost: one energy-and-gradient evaluation per chain and step, warm-up
included, plus the bootstraps of the two phases (and one per generator move
in joint mode).

Health: besides diverged chains and chains that barely moved (in the warm-up
or in the flattened run), `energy_range_problems` flags energy ranges the
chains piled up against, never reached, or that end below the starting
states, and weights that rest on a few chains. The sampler's `Sampler` record
at the end of the module gathers these traits.
"""

import collections
import functools

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.sampling.chains import Draws
from tf_stackelberg.sampling.diagnostics import barely_moved
from tf_stackelberg.sampling.diagnostics import diverged
from tf_stackelberg.sampling.diagnostics import share
from tf_stackelberg.sampling.energy_bins import energy_histogram
from tf_stackelberg.sampling.energy_bins import importance_log_weights
from tf_stackelberg.sampling.engine import Collection
from tf_stackelberg.sampling.estimators import kish_ess
from tf_stackelberg.sampling.estimators import normalized_log_weights
from tf_stackelberg.sampling.estimators import weighted_resample
from tf_stackelberg.sampling.registry import register
from tf_stackelberg.sampling.registry import Sampler
from tf_stackelberg.sampling.samplers.rep import make_rep_kernel
from tf_stackelberg.sampling.settings import DEFAULTS
from tf_stackelberg.sampling.unnest import get_outermost
from tf_stackelberg.sampling.wang_landau import WangLandau

__all__ = [
    'BOTTOM_PILE_UP_MIN_SHARE',
    'END_BIN_FULL_SHARE',
    'ESS_MIN_FRACTION',
    'INITIAL_ABOVE_RANGE_MAX',
    'PILE_UP_MIN_SHARE',
    'PILE_UP_RATIO',
    'Plan',
    'RARE_SHARE',
    'SHAPED_VISITS_MIN_STEPS',
    'UNVISITED_END_FRACTION',
    'energy_range_from_warmup',
    'energy_range_problems',
    'make_wang_landau_kernel',
    'min_steps',
    'phase_lengths',
    'plan_phases',
    'target_bin_probs_from_warmup',
]

# Thresholds of `energy_range_problems` (see its docstring).
PILE_UP_RATIO = 3.
PILE_UP_MIN_SHARE = 0.2
BOTTOM_PILE_UP_MIN_SHARE = 0.5
END_BIN_FULL_SHARE = 0.9
UNVISITED_END_FRACTION = 0.5
RARE_SHARE = 1e-3
INITIAL_ABOVE_RANGE_MAX = 0.05
ESS_MIN_FRACTION = 0.01
SHAPED_VISITS_MIN_STEPS = 10000


class Plan(collections.namedtuple('Plan', ['num_warmup_steps',
                                           'num_flat_steps',
                                           'collect_start'])):
  """Step counts of a Wang-Landau run (ints, or int32 `Tensor`s in a graph).

  Attributes:
    num_warmup_steps: `W`, MALA steps before the flattened run.
    num_flat_steps: `N = num_steps - W`, Wang-Landau steps.
    collect_start: `C`, Wang-Landau steps during which bias and step adapt;
      the states after steps `C + 1..N` are collected.
  """
  __slots__ = ()


def plan_phases(num_steps, settings):
  """The `Plan` of a run of `num_steps` transitions per chain.

  Args:
    num_steps: int, or int32 scalar `Tensor` (in a graph).
    settings: `SamplerSettings`.

  Returns:
    `Plan`, of Python ints for an int `num_steps`.

  Raises:
    ValueError: if the warm-up leaves no Wang-Landau step (static sizes).
  """
  static = tf.get_static_value(num_steps)
  if static is not None:
    num_steps = int(static)
  if settings.energy_range is not None:
    num_warmup = 0
  elif settings.num_warmup_steps is not None:
    num_warmup = settings.num_warmup_steps
  elif static is not None:
    num_warmup = max(1, num_steps // 5)
  else:
    num_warmup = tf.maximum(1, num_steps // 5)
  num_flat = num_steps - num_warmup
  keep = 1. - settings.collect_fraction
  if static is not None:
    if settings.energy_range is None and not 0 < num_warmup < num_steps:
      raise ValueError('Need 0 < num_warmup_steps < num_steps for an '
                       f'automatic energy range, got {num_warmup} warm-up '
                       f'steps of {num_steps}.')
    if num_flat < 1:
      raise ValueError(f'`num_steps` must be positive, got {num_steps}.')
    collect_start = int(num_flat * keep)
  else:
    collect_start = tf.cast(tf.cast(num_flat, tf.float64) * keep, tf.int32)
  return Plan(num_warmup, num_flat, collect_start)


def energy_range_from_warmup(energies, settled_energies=None, lower_q=0.01,
                             upper_q=0.99, margin=DEFAULTS.range_margin,
                             initial_energies=None,
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
  energy_range_from_warmup(pooled, warmup[50:], margin=0.25)
  # (2.01, 3.25): the state at 30 is 1/4 of 1% of the pool
  energy_range_from_warmup(pooled, warmup[50:], margin=0.25,
                           initial_energies=initial)
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


def make_wang_landau_kernel(energy_fn, energy_lo, energy_hi, bin_probs, *,
                            settings, collect_start, shard=None):
  """The `WangLandau` kernel of the flattened phase (MALA inside).

  Bias and step size adapt during the first `collect_start` steps and are
  frozen afterwards. Under a strategy, `shard` is the replica's
  `sharding.ChainShard`, over whose replicas the kernel pools its
  statistics.
  """
  return WangLandau(
      energy_fn, energy_lo, energy_hi, num_bins=settings.num_bins,
      step_size=settings.step_size, shared_bias=settings.shared_bias,
      bias_gain_t0=settings.t0,
      target_accept_prob=settings.target_accept_prob,
      num_adaptation_steps=collect_start, target_bin_probs=bin_probs,
      num_bias_adaptation_steps=collect_start, chain_shard=shard)


def min_steps(settings):
  """`Sampler.min_steps` of `'wl'` (see `settings.min_num_steps`)."""
  if settings.energy_range is not None:
    return 1
  warmup = settings.num_warmup_steps
  return (1 if warmup is None else warmup) + 1


def phase_lengths(num_steps, settings):
  """`Sampler.phases` of `'wl'`: the warm-up, if any, and the flattened run."""
  plan = plan_phases(num_steps, settings)
  return tuple(n for n in (plan.num_warmup_steps, plan.num_flat_steps) if n)


def wang_landau(chains):
  """Warm-up, flattened run, reservoirs, resampling (module docstring)."""
  settings = chains.settings
  dtype = chains.model.dtype
  plan = plan_phases(chains.num_steps, settings)
  state = chains.initial_state
  phases = []
  if settings.energy_range is None:
    warmup = chains.run(
        functools.partial(make_rep_kernel, step_size=settings.step_size),
        state, chains.seeds.warmup, plan.num_warmup_steps)
    phases.append(warmup)
    settled = warmup.energies[plan.num_warmup_steps // 2:]
    energy_lo, energy_hi = energy_range_from_warmup(
        tf.concat([warmup.initial_energy[tf.newaxis], warmup.energies],
                  axis=0), settled, margin=settings.range_margin,
        initial_energies=warmup.initial_energy)
    bin_probs = target_bin_probs_from_warmup(
        settled, energy_lo, energy_hi, settings.num_bins,
        settings.warmup_visit_fraction)
    state = warmup.state
  else:
    energy_lo = tf.constant(settings.energy_range[0], dtype)
    energy_hi = tf.constant(settings.energy_range[1], dtype)
    bin_probs = None
  energy_lo = tf.cast(energy_lo, dtype)
  energy_hi = tf.cast(energy_hi, dtype)
  flat = chains.run(
      functools.partial(make_wang_landau_kernel, settings=settings,
                        collect_start=plan.collect_start),
      state, chains.seeds.chain, plan.num_flat_steps,
      kernel_args=(energy_lo, energy_hi, bin_probs),
      steps_before=plan.num_warmup_steps,
      collection=Collection(plan.collect_start, functools.partial(
          importance_log_weights, normalize=False)),
      cross_chain=True)
  phases.append(flat)
  initial_energy = phases[0].initial_energy
  if bin_probs is None:
    bin_probs = tf.fill([settings.num_bins],
                        tf.constant(1. / settings.num_bins, dtype))

  reservoir = flat.reservoir
  final_z, final_k = chains.split(flat.state)
  z, k = chains.split(reservoir.state)
  energy = reservoir.energy
  log_weights = normalized_log_weights(
      reservoir.log_total, k, chains.model.num_generators,
      group_by_generator=not chains.joint,
      generator_log_prior=chains.model.generator_log_prior)
  extra = dict(theta=get_outermost(flat.results, 'theta'),
               visit_counts=get_outermost(flat.results, 'visit_counts'),
               energy_range=tf.stack([energy_lo, energy_hi]),
               target_bin_probs=tf.cast(bin_probs, dtype),
               collected_histogram=energy_histogram(
                   flat.energies[plan.collect_start:], energy_lo, energy_hi,
                   settings.num_bins),
               initial_above_range=tf.reduce_mean(tf.cast(
                   initial_energy > energy_hi, dtype)),
               log_weights=log_weights, ess=kish_ess(log_weights),
               # The reference WL-GAN output: the chains' final states, not
               # reweighted (draws of the flattened law, not of exp(-E)).
               unweighted_z=final_z, unweighted_k=final_k,
               unweighted_energy=flat.energies[-1])
  if settings.resample:
    z, k, energy = weighted_resample((z, k, energy), log_weights,
                                     chains.num_chains, chains.seeds.resample)
  return Draws(z, k, energy, phases=tuple(phases),
               bins=(energy_lo, energy_hi),
               step_size=tf.exp(get_outermost(flat.results, 'log_step_size')),
               extra=extra)


def _range_remedy(fixed_range, end):
  """What to change about an energy range that ends in the wrong place."""
  if fixed_range:
    return f'move the {end} of `wl_energy_range`'
  return 'raise `steps` or set `wl_energy_range`'


def _rare_end(shares):
  """Number of leading bins that hold less than `RARE_SHARE` together."""
  return int(np.searchsorted(np.cumsum(shares), RARE_SHARE, side='left'))


def energy_range_problems(diagnostics):
  """Health check: energy ranges the chains piled up against, never reached or
  crossed, or that end below the starting states, and weights that rest on a
  few chains.

  With `s_j` the share of the main-phase visits in bin `j` (energies outside
  the range count in the end bins):

  * `s_j >= END_BIN_FULL_SHARE = 0.9` for an end bin: the chains stayed
    below (above) the range and never reached it;
  * otherwise a pile-up in an end bin, measured on the collected steps
    (bias frozen): a share above `PILE_UP_RATIO = 3` times the bin's desired
    share `omega_j` and above `PILE_UP_MIN_SHARE = 0.2` (top bin) or
    `BOTTOM_PILE_UP_MIN_SHARE = 0.5` (bottom bin). The range ends where the
    chains are, so that the open-ended end bin holds much of their
    energies. At the top this hides the levels where the barriers may be
    (e.g. a top inside the modes' energies). At the bottom it only costs
    resolution among the lowest energies (the weights stay exact), and
    short runs, whose warm-up has not settled when it sets `E_lo`, show it
    (35% on a run of 30 steps), hence the higher bar. A top that ends below
    the barriers but above the modes' energies leaves no pile-up: the
    chains flatten the histogram within the range without crossing; the
    check of the starting states below catches that case;
  * more than `UNVISITED_END_FRACTION = 0.5` of the bins, at the bottom or
    at the top of the range, holding less than `RARE_SHARE = 0.001` of the
    visits together: the range reaches far beyond the chains, and most of
    its bins are wasted;
  * bins never visited between those ends (gaps among visited bins).
    Unvisited bins at the ends are not a problem in themselves: the
    automatic range ends a margin above the generator's energies, which
    short runs need not reach;
  * more than `INITIAL_ABOVE_RANGE_MAX = 0.05` of the starting states
    (`z ~ p0`, the generator's own samples) above `E_hi`. The automatic
    range covers all but 5% of them by construction (its top is above their
    95% quantile), so this flags a fixed `wl_energy_range` that ends below
    the generator's own energies: the barriers between modes, which the
    generator's samples straddle, may lie above the range, where the bias
    cannot help the chains over them. Such a run keeps a flat histogram and
    a high effective sample size while the modes' masses are wrong
    (`tests/test_sampling_health.py`: 7 standard errors);
  * a Kish effective sample size of the importance weights below
    `ESS_MIN_FRACTION = 0.01` of the chains;
  * desired visits shaped by the warm-up (`SamplerSettings` with a positive
    warmup_visit_fraction, i.e. a non-flat `target_bin_probs`) on a run of
    fewer than `SHAPED_VISITS_MIN_STEPS = 10000` steps: the shaped visits
    keep the chains inside the modes for much of their time, fewer of them
    cross the barriers, and on the toys of `tests/test_wl_unbiased.py` the
    mode masses come out 5 to 13 standard errors off at 640 steps with no
    other sign (docs/design.md, section 14.4).
  """
  problems = []
  histogram = np.asarray(diagnostics.get('energy_histogram', []), np.float64)
  edges = np.asarray(diagnostics.get('bin_edges', []), np.float64)
  if histogram.size < 2 or not histogram.sum() > 0 or edges.size < 3:
    return problems
  num_bins = histogram.size
  lo, hi = edges[0], edges[-1]
  width = (hi - lo) / num_bins
  fixed_range = int(diagnostics.get('num_warmup_steps', 0)) == 0
  shares = histogram / histogram.sum()
  collected = np.asarray(diagnostics.get('collected_histogram', histogram),
                         np.float64)
  if not collected.sum() > 0:
    collected = histogram
  collected = collected / collected.sum()
  desired = np.asarray(diagnostics.get('target_bin_probs',
                                       np.full([num_bins], 1. / num_bins)),
                       np.float64)
  ends = ((0, 'bottom', 'below', f'E_lo = {lo:.4g}', BOTTOM_PILE_UP_MIN_SHARE),
          (num_bins - 1, 'top', 'above', f'E_hi = {hi:.4g}',
           PILE_UP_MIN_SHARE))
  never_reached = False
  for index, end, side, edge, min_share in ends:
    if shares[index] >= END_BIN_FULL_SHARE:
      never_reached = True
      problems.append(
          f'{share(shares[index])} of the Wang-Landau visits lie {side} '
          f'the energy range [{lo:.4g}, {hi:.4g}], which the chains never '
          f'reached: {_range_remedy(fixed_range, end)}')
    elif (collected[index] > PILE_UP_RATIO * desired[index] and
          collected[index] > min_share):
      problems.append(
          f'the chains piled up in the {end} bin ({edge}): '
          f'{share(collected[index])} of the collected visits, '
          f'{share(desired[index])} desired; the energy range ends where '
          f'the chains are: {_range_remedy(fixed_range, end)}')
  if not never_reached:
    below = _rare_end(shares)
    above = _rare_end(shares[::-1])
    if below > UNVISITED_END_FRACTION * num_bins:
      problems.append(
          f'the chains hardly ever went below E = {lo + below * width:.4g} '
          f'(the lowest {below} of {num_bins} Wang-Landau bins have '
          f'{share(shares[:below].sum())} of the visits): '
          f'{_range_remedy(fixed_range, "bottom")}')
    if above > UNVISITED_END_FRACTION * num_bins:
      problems.append(
          f'the chains hardly ever climbed above E = '
          f'{hi - above * width:.4g} (the highest {above} of {num_bins} '
          f'Wang-Landau bins have {share(shares[num_bins - above:].sum())} '
          f'of the visits): {_range_remedy(fixed_range, "top")}')
    gaps = int(np.sum(histogram[below:num_bins - above] == 0))
    if gaps:
      problems.append(
          f'{gaps} of the {num_bins} Wang-Landau bins were never visited, '
          'between visited ones: lower `wl_bins` or raise '
          '`steps`')
  above = diagnostics.get('initial_above_range')
  if above is not None and float(above) > INITIAL_ABOVE_RANGE_MAX:
    problems.append(
        f'{share(float(above))} of the starting states (the generator\'s '
        f'own samples) lie above the energy range (E_hi = {hi:.4g}), as may '
        'the barriers between modes, which the chains then do not cross: '
        'raise the top of `wl_energy_range` or leave it empty')
  ess = diagnostics.get('ess')
  log_weights = diagnostics.get('log_weights')
  if ess is not None and log_weights is not None:
    num_chains = np.size(log_weights)
    if float(ess) < ESS_MIN_FRACTION * num_chains:
      problems.append(
          f'the importance weights rest on a few chains (Kish ESS '
          f'{float(ess):.1f} of {num_chains}): raise '
          '`num_samples` or narrow `wl_energy_range`')
  problems.extend(_shaped_visits_problem(diagnostics, desired))
  return problems


def _shaped_visits_problem(diagnostics, desired):
  """The last check of `energy_range_problems` (a list of 0 or 1 line)."""
  num_steps = int(diagnostics.get('num_steps', 0))
  if np.ptp(desired) <= 1e-6 or num_steps >= SHAPED_VISITS_MIN_STEPS:
    return []
  return [f'the desired Wang-Landau visits are shaped by the warm-up '
          f'(SamplerSettings.warmup_visit_fraction > 0), which keeps the '
          f'chains below the barriers between modes: at {num_steps} steps '
          f'the modes\' masses can be many standard errors off; set '
          f'warmup_visit_fraction to 0 or raise `steps` to '
          f'{SHAPED_VISITS_MIN_STEPS}']


register(Sampler(
    'wl', wang_landau, min_steps=min_steps, phases=phase_lengths,
    health_checks=(diverged, barely_moved('lower `step_size`', by_phase=True),
                   energy_range_problems)))
