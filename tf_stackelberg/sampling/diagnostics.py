"""Diagnostics of a sampling run: acceptance, energy traces, histograms, ESS.

`summarize(draws, num_chains, num_bins)` turns what a sampler returns
(`chains.Draws`) into the `diagnostics` dict of `sample_latents`:

* `acceptance_rate`: mean acceptance of the latent moves over all steps and
  chains (1 for unadjusted Langevin, NaN without chains);
  `acceptance_per_step` `[num_steps]`; `generator_acceptance_rate`: mean
  fraction of chains whose generator index changes in a step (0 unless
  joint).
* `energy_trace` `[num_steps]`: mean energy over chains after each step;
  `energy_trace_quantiles` `[num_steps, 3]`: its 5%, 50%, 95% quantiles.
* `energy_min`, `energy_max`, `energy_q01`, `energy_q99`: over every state
  visited (initial states and warm-up included).
* `energy_histogram` `[num_bins]` int64 and `bin_edges` `[num_bins + 1]`:
  visits of the main phase per bin: over the sampler's own bins if it has
  them (Wang-Landau; energies outside the range counted in the end bins, as
  `J` does), else `num_bins` equal bins between the visited extremes.
* `ess`: the sampler's effective sample size if it reports one (the Kish
  size of the Wang-Landau weights), else the number of chains (final states
  of independent chains, unweighted); `energy_ess`:
  `tfp.mcmc.effective_sample_size` of the energy trace over the second half
  of the main phase, summed over chains (a mixing measure).
* `step_size`: the final step size.
* `num_energy_evaluations`: latent points passed through `G` and `D`
  (forward passes of the energy, with or without a gradient), summed over
  chains, bootstraps and warm-up included; `num_gradient_evaluations`: those
  that also back-propagate.
* `num_steps`, `num_warmup_steps` (steps before the main phase), and the
  sampler's own entries (`Draws.extra`).

`health_problems(diagnostics, sampler_name)` reads a finished run's
(numpy) diagnostics and returns one line per sign of a failed run, each
naming the setting to change (by default as its `--sampling.*` flag): the
sampler's own health checks (`registry.Sampler.health_checks`), e.g. chains
that did not move or diverged (`barely_moved`, `diverged`), and Wang-Landau
energy ranges that the chains piled up against, never reached, or that end
below the generator's own samples (`samplers/wl.py`). `sample_latents`
stores them in `diagnostics['problems']`.
"""

import re

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.config.sections import SamplingConfig
from tf_stackelberg.sampling.energy_bins import energy_histogram
from tf_stackelberg.sampling.registry import SAMPLERS

__all__ = [
    'ACCEPTANCE_MIN',
    'barely_moved',
    'diverged',
    'energy_ess',
    'finite_min_max',
    'health_problems',
    'setting_flag',
    'share',
    'summarize',
]

# Threshold of `barely_moved` (see `health_problems`).
ACCEPTANCE_MIN = 0.01

# A setting named in a problem message: `step_size`.
_SETTING = re.compile(r'`(\w+)`')


def finite_min_max(values):
  """Smallest and largest finite value of `values` (any shape)."""
  flat = tf.reshape(values, [-1])
  finite = tf.math.is_finite(flat)
  big = tf.constant(np.finfo(np.float32).max, flat.dtype)
  lo = tf.reduce_min(tf.where(finite, flat, big))
  hi = tf.reduce_max(tf.where(finite, flat, -big))
  return lo, hi


def _equal_bins(energies):
  lo, hi = finite_min_max(energies)
  return lo, tf.where(hi > lo, hi, lo + 1.)


def _summed_ess(half):
  ess = tfp.mcmc.effective_sample_size(half,
                                       filter_beyond_positive_pairs=True)
  # A chain that never moved has no defined autocorrelation: count it once.
  ess = tf.where(tf.math.is_finite(ess), ess, tf.ones_like(ess))
  return tf.reduce_sum(ess)


def energy_ess(trace):
  """Autocorrelation ESS of the second half of `trace` `[steps, chains]`.

  `tfp.mcmc.effective_sample_size` per chain, summed over chains; with fewer
  than four steps in the half, the number of values in it.
  """
  num_steps = trace.shape[0]
  if num_steps is not None:
    half = trace[num_steps // 2:]
    if half.shape[0] < 4:
      return tf.cast(tf.size(half), trace.dtype)
    return _summed_ess(half)
  half = trace[tf.shape(trace)[0] // 2:]
  return tf.cond(tf.shape(half)[0] < 4,
                 lambda: tf.cast(tf.size(half), trace.dtype),
                 lambda: _summed_ess(half))


def _prior_summary(draws, num_chains, num_bins):
  energy = draws.energy
  dtype = energy.dtype
  lo, hi = _equal_bins(energy)
  q = tfp.stats.percentile(energy, [1., 99.], interpolation='linear')
  return dict(
      num_steps=0,
      acceptance_rate=tf.constant(float('nan'), dtype),
      acceptance_per_step=tf.zeros([0], dtype),
      generator_acceptance_rate=tf.zeros([], dtype),
      energy_trace=tf.zeros([0], dtype),
      energy_trace_quantiles=tf.zeros([0, 3], dtype),
      energy_min=lo, energy_max=hi, energy_q01=q[0], energy_q99=q[1],
      energy_histogram=energy_histogram(energy, lo, hi, num_bins),
      bin_edges=tf.linspace(lo, hi, num_bins + 1),
      ess=tf.cast(num_chains, dtype), energy_ess=tf.cast(num_chains, dtype),
      step_size=draws.step_size,
      num_energy_evaluations=num_chains, num_gradient_evaluations=0,
      num_warmup_steps=0)


def summarize(draws, num_chains, num_bins):
  """The `diagnostics` dict of a sampler's `Draws` (see the module docstring).

  Args:
    draws: `chains.Draws`.
    num_chains: number of chains.
    num_bins: bins of the energy histogram (when the sampler has none).

  Returns:
    `dict` of `Tensor`s and Python numbers.
  """
  if not draws.phases:
    summary = _prior_summary(draws, num_chains, num_bins)
    summary.update(draws.extra)
    return summary
  phases = draws.phases
  main = phases[-1]
  dtype = main.energies.dtype

  def concat(values):
    return values[0] if len(values) == 1 else tf.concat(values, axis=0)

  accepts = concat([p.acceptance for p in phases])
  k_accepts = concat([p.generator_changed for p in phases])
  energies = concat([p.energies for p in phases])
  visited = tf.concat([t for p in phases
                       for t in (p.initial_energy[tf.newaxis], p.energies)],
                      axis=0)
  v_lo, v_hi = finite_min_max(visited)
  v_q = tfp.stats.percentile(tf.reshape(visited, [-1]), [1., 99.],
                             interpolation='linear')
  if draws.bins is None:
    edges_lo, edges_hi = _equal_bins(main.energies)
  else:
    edges_lo, edges_hi = draws.bins
  num_evaluations = sum(p.num_evaluations for p in phases)
  summary = dict(
      num_steps=sum(p.num_steps for p in phases),
      acceptance_rate=tf.reduce_mean(accepts),
      acceptance_per_step=accepts,
      generator_acceptance_rate=tf.reduce_mean(k_accepts),
      energy_trace=tf.reduce_mean(energies, axis=1),
      energy_trace_quantiles=tf.transpose(tfp.stats.percentile(
          energies, [5., 50., 95.], axis=1, interpolation='linear')),
      energy_min=v_lo, energy_max=v_hi, energy_q01=v_q[0], energy_q99=v_q[1],
      energy_histogram=energy_histogram(main.energies, edges_lo, edges_hi,
                                        num_bins),
      bin_edges=tf.linspace(edges_lo, edges_hi, num_bins + 1),
      ess=tf.cast(num_chains, dtype),
      energy_ess=energy_ess(main.energies),
      step_size=draws.step_size,
      num_energy_evaluations=num_evaluations,
      num_gradient_evaluations=sum(p.num_evaluations for p in phases
                                   if p.gradient),
      num_warmup_steps=sum(p.num_steps for p in phases[:-1]))
  summary.update(draws.extra)
  return summary


def share(value):
  """`value` as a percentage for a problem message ('32%', '0.02%')."""
  return f'{100. * value:.0f}%' if value >= 0.01 else f'{100. * value:.1g}%'


def diverged(diagnostics):
  """Health check: non-finite energies in the energy trace."""
  trace = np.asarray(diagnostics.get('energy_trace', []), np.float64)
  if trace.size and not np.all(np.isfinite(trace)):
    return ['the chains diverged (non-finite energies): lower `step_size`']
  return []


def barely_moved(remedy, by_phase=False):
  """Health check: mean acceptance of the latent moves below `ACCEPTANCE_MIN`.

  Args:
    remedy: what the message tells to change, naming settings in backticks.
    by_phase: with a warm-up (`num_warmup_steps`), check the warm-up and the
      Wang-Landau phase each on its own.

  Returns:
    callable `(diagnostics) -> list of str`.
  """

  def check(diagnostics):
    accept = np.asarray(diagnostics.get('acceptance_per_step', []),
                        np.float64)
    if not accept.size:
      return []
    rates = {'': float(np.mean(accept))}
    num_warmup = int(diagnostics.get('num_warmup_steps', 0))
    if by_phase and 0 < num_warmup < accept.size:
      rates = {' in the warm-up': float(np.mean(accept[:num_warmup])),
               ' in the Wang-Landau phase': float(np.mean(
                   accept[num_warmup:]))}
    low = [f'{rate:.3f}{where}' for where, rate in rates.items()
           if not rate >= ACCEPTANCE_MIN]
    if not low:
      return []
    return [f'chains barely moved (acceptance {", ".join(low)}): {remedy}']

  return check


def setting_flag(setting):
  """The command-line flag of the sampling setting `setting`."""
  return SamplingConfig().flag(setting)


def health_problems(diagnostics, sampler_name, name_setting=setting_flag):
  """Signs that a finished sampling run failed, one line each.

  Each line says what went wrong and names the setting to change (a field of
  `config.sections.SamplingConfig`), written by `name_setting`: by default
  its `--sampling.*` flag. The checks are the sampler's
  (`registry.Sampler.health_checks`) and their thresholds (module
  constants, and those of `samplers/wl.py`) are chosen so that healthy runs
  pass, with room to spare:

  * `'wl'`, `'rep'`, `'mh'`: mean acceptance of the latent moves below
    `ACCEPTANCE_MIN = 0.01` (for `'wl'` in the warm-up or in the
    Wang-Landau phase): the chains barely moved (`barely_moved`). For the
    Langevin kernels the step is too large (`step_size`); `'mh'` has no
    step, and more steps are its only remedy (`steps`).
  * `'wl'`, `'rep'`, `'ddls'`: non-finite energies in the energy trace:
    the chains diverged (`diverged`; `step_size`).
  * `'wl'`: energy ranges the chains piled up against, never reached or
    that end below the generator's own samples, importance weights that
    rest on a few chains, and desired visits shaped by the warm-up on a run
    too short for them to be unbiased (`samplers/wl.py`,
    `energy_range_problems`).

  A run can fail in ways no diagnostic shows (a mode that no chain ever
  found); an empty list is no proof of success.

  Args:
    diagnostics: the `diagnostics` dict of an eager `sample_latents` (numpy
      values and Python numbers).
    sampler_name: the sampler that made it.
    name_setting: callable `(setting) -> str`, how a message names a
      setting.

  Returns:
    list of str, empty for a healthy run.

  #### Examples

  ```python
  result = sample_latents('rep', model, 1000, 200, [0, 1],
                          SamplerSettings(step_size=1e6))
  health_problems(result.diagnostics, 'rep')
  # ['chains barely moved (acceptance 0.000): lower --sampling.step_size']
  ```
  """
  problems = [problem
              for check in SAMPLERS.get(sampler_name).health_checks
              for problem in check(diagnostics)]
  return [_SETTING.sub(lambda match: name_setting(match.group(1)), problem)
          for problem in problems]
