"""`'wl'`: Wang-Landau / SAMC flattening around MALA, importance-resampled.

Every chain makes `num_steps` transitions in all, in two phases:

1. Warm-up (`W = num_warmup_steps`, default `max(1, num_steps // 5)`): MALA
   on `exp(-E)` with the step `s` (`rep`'s kernel), on the same chains.
2. Range. `E_lo` is the 1% quantile of the energies of the second half of
   the warm-up. `E_hi` is the larger of the 99% quantile of every energy
   seen (initial states and warm-up pooled) and the 95% quantile of the
   initial states' energies alone, plus a quarter of `E_hi - E_lo`
   (`wang_landau.energy_range_from_warmup`). The initial states are the
   generator's own samples (`z ~ p0`), some of which lie between the
   modes, at or above the barriers. The warm-up chains fall into the modes
   within a few steps, so in the pool the initial states are a small share
   (one in `W + 1`), and the pooled quantile alone can end below the
   barriers, which the flattened chains then do not cross. On the 2-D
   four-mode toy of `tests/test_sampling_health.py` (1000 chains, 800
   steps, flat `omega`) it ends at 9.9, below passes at 10.0 and 10.1, and
   the mode masses come out 7 standard errors off with a Kish size of 808
   of 1000; with the initial states' own quantile the range ends at 16.0
   and the masses are within 3 standard errors. All but 5% of the starting
   states thus lie inside the range by construction (the 95% rather than
   the 99% quantile, because the generator's energies have a long upper
   tail, whose extremes would stretch the bins over energies no chain
   visits).
3. Desired bin probabilities `omega = f h + (1 - f) / M`, `h` the normalised
   histogram of the second half of the warm-up over the `M` bins,
   `f = warmup_visit_fraction` (`wang_landau.target_bin_probs_from_warmup`).
   A fixed `energy_range` skips steps 1-3 (flat `omega`, `W = 0`).
4. Flattened run of `N = num_steps - W` steps of the `WangLandau` kernel
   (MALA inside, initial step `s`) over `[E_lo, E_hi]`: the SAMC bias
   `theta <- theta + t0 / max(t0, t) (onehot(J(E_t)) - omega)` and the
   step size (toward acceptance 0.574) adapt during the first
   `C = floor(N (1 - collect_fraction))` steps, then both are frozen: the
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

Under a strategy (`sharding`) the warm-up runs in chunks per call, as the
other samplers do, and each step of the flattened run is one call, whose
shared bias and step size pool the chains of all replicas
(`WangLandau(chain_shard=...)`); the range, `omega`, the weights and the
resampling are computed from the merged outputs of the phases.

Cost: one energy-and-gradient evaluation per chain and step, warm-up
included, plus the bootstraps of the two phases (and one per generator move
in joint mode).
"""

import collections
import functools

import tensorflow as tf

from tf_stackelberg.sampling.driver import Collection
from tf_stackelberg.sampling.driver import Draws
from tf_stackelberg.sampling.estimators import kish_ess
from tf_stackelberg.sampling.estimators import normalized_log_weights
from tf_stackelberg.sampling.estimators import weighted_resample
from tf_stackelberg.sampling.registry import SAMPLERS
from tf_stackelberg.sampling.samplers.rep import make_rep_kernel
from tf_stackelberg.sampling.unnest import get_outermost
from tf_stackelberg.sampling.wang_landau import energy_histogram
from tf_stackelberg.sampling.wang_landau import energy_range_from_warmup
from tf_stackelberg.sampling.wang_landau import importance_log_weights
from tf_stackelberg.sampling.wang_landau import target_bin_probs_from_warmup
from tf_stackelberg.sampling.wang_landau import WangLandau

__all__ = [
    'Plan',
    'make_wang_landau_kernel',
    'plan_phases',
]


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


@SAMPLERS.register('wl')
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
                  axis=0), settled, initial_energies=warmup.initial_energy)
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
  z, k = chains.split(reservoir.state)
  energy = reservoir.energy
  log_weights = normalized_log_weights(
      reservoir.log_total, k, chains.model.num_generators,
      group_by_generator=not chains.joint)
  extra = dict(theta=get_outermost(flat.results, 'theta'),
               visit_counts=get_outermost(flat.results, 'visit_counts'),
               energy_range=tf.stack([energy_lo, energy_hi]),
               target_bin_probs=tf.cast(bin_probs, dtype),
               collected_histogram=energy_histogram(
                   flat.energies[plan.collect_start:], energy_lo, energy_hi,
                   settings.num_bins),
               initial_above_range=tf.reduce_mean(tf.cast(
                   initial_energy > energy_hi, dtype)),
               log_weights=log_weights, ess=kish_ess(log_weights))
  if settings.resample:
    z, k, energy = weighted_resample((z, k, energy), log_weights,
                                     chains.num_chains, chains.seeds.resample)
  return Draws(z, k, energy, phases=tuple(phases),
               bins=(energy_lo, energy_hi),
               step_size=tf.exp(get_outermost(flat.results, 'log_step_size')),
               extra=extra)
