"""Diagnostics of a sampling run: acceptance, energy traces, histograms, ESS.

`summarize(draws, num_chains, num_bins)` turns what a sampler returns
(`driver.Draws`) into the `diagnostics` dict of `sample_latents`:

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
naming the `--sampling.*` flag to change: chains that did not move or
diverged, and Wang-Landau energy ranges that the chains piled up against,
never reached, or that end below the generator's own samples.
`sample_latents` stores them in `diagnostics['problems']`.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.sampling.wang_landau import energy_histogram

__all__ = [
    'ACCEPTANCE_MIN',
    'BOTTOM_PILE_UP_MIN_SHARE',
    'END_BIN_FULL_SHARE',
    'ESS_MIN_FRACTION',
    'INITIAL_ABOVE_RANGE_MAX',
    'PILE_UP_MIN_SHARE',
    'PILE_UP_RATIO',
    'RARE_SHARE',
    'UNVISITED_END_FRACTION',
    'energy_ess',
    'finite_min_max',
    'health_problems',
    'summarize',
]

# Thresholds of `health_problems` (see its docstring).
ACCEPTANCE_MIN = 0.01
PILE_UP_RATIO = 3.
PILE_UP_MIN_SHARE = 0.2
BOTTOM_PILE_UP_MIN_SHARE = 0.5
END_BIN_FULL_SHARE = 0.9
UNVISITED_END_FRACTION = 0.5
RARE_SHARE = 1e-3
INITIAL_ABOVE_RANGE_MAX = 0.05
ESS_MIN_FRACTION = 0.01


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
    draws: `driver.Draws`.
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


def _share(value):
  return f'{100. * value:.0f}%' if value >= 0.01 else f'{100. * value:.1g}%'


def _acceptance_problems(diagnostics, sampler_name):
  """Chains that barely moved, or diverged."""
  problems = []
  trace = np.asarray(diagnostics.get('energy_trace', []), np.float64)
  if (sampler_name in ('ddls', 'rep', 'wl') and trace.size and
      not np.all(np.isfinite(trace))):
    problems.append('the chains diverged (non-finite energies): lower '
                    '--sampling.step_size')
  if sampler_name not in ('mh', 'rep', 'wl'):
    return problems
  accept = np.asarray(diagnostics.get('acceptance_per_step', []), np.float64)
  if not accept.size:
    return problems
  rates = {'': float(np.mean(accept))}
  num_warmup = int(diagnostics.get('num_warmup_steps', 0))
  if sampler_name == 'wl' and 0 < num_warmup < accept.size:
    rates = {' in the warm-up': float(np.mean(accept[:num_warmup])),
             ' in the Wang-Landau phase': float(np.mean(accept[num_warmup:]))}
  low = [f'{rate:.3f}{where}' for where, rate in rates.items()
         if not rate >= ACCEPTANCE_MIN]
  if low:
    if sampler_name == 'mh':
      fix = ('the prior proposals are almost all rejected; raise '
             '--sampling.steps')
    else:
      fix = 'lower --sampling.step_size'
    problems.append(f'chains barely moved (acceptance {", ".join(low)}): '
                    f'{fix}')
  return problems


def _range_flag(fixed_range, end):
  if fixed_range:
    return f'move the {end} of --sampling.wl_energy_range'
  return 'raise --sampling.steps or set --sampling.wl_energy_range'


def _rare_end(shares):
  """Number of leading bins that hold less than `RARE_SHARE` together."""
  return int(np.searchsorted(np.cumsum(shares), RARE_SHARE, side='left'))


def _wang_landau_problems(diagnostics):
  """Energy ranges the chains piled up against, never reached or crossed."""
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
          f'{_share(shares[index])} of the Wang-Landau visits lie {side} '
          f'the energy range [{lo:.4g}, {hi:.4g}], which the chains never '
          f'reached: {_range_flag(fixed_range, end)}')
    elif (collected[index] > PILE_UP_RATIO * desired[index] and
          collected[index] > min_share):
      problems.append(
          f'the chains piled up in the {end} bin ({edge}): '
          f'{_share(collected[index])} of the collected visits, '
          f'{_share(desired[index])} desired; the energy range ends where '
          f'the chains are: {_range_flag(fixed_range, end)}')
  if not never_reached:
    below = _rare_end(shares)
    above = _rare_end(shares[::-1])
    if below > UNVISITED_END_FRACTION * num_bins:
      problems.append(
          f'the chains hardly ever went below E = {lo + below * width:.4g} '
          f'(the lowest {below} of {num_bins} Wang-Landau bins have '
          f'{_share(shares[:below].sum())} of the visits): '
          f'{_range_flag(fixed_range, "bottom")}')
    if above > UNVISITED_END_FRACTION * num_bins:
      problems.append(
          f'the chains hardly ever climbed above E = '
          f'{hi - above * width:.4g} (the highest {above} of {num_bins} '
          f'Wang-Landau bins have {_share(shares[num_bins - above:].sum())} '
          f'of the visits): {_range_flag(fixed_range, "top")}')
    gaps = int(np.sum(histogram[below:num_bins - above] == 0))
    if gaps:
      problems.append(
          f'{gaps} of the {num_bins} Wang-Landau bins were never visited, '
          'between visited ones: lower --sampling.wl_bins or raise '
          '--sampling.steps')
  above = diagnostics.get('initial_above_range')
  if above is not None and float(above) > INITIAL_ABOVE_RANGE_MAX:
    problems.append(
        f'{_share(float(above))} of the starting states (the generator\'s '
        f'own samples) lie above the energy range (E_hi = {hi:.4g}), as may '
        'the barriers between modes, which the chains then do not cross: '
        'raise the top of --sampling.wl_energy_range or leave it empty')
  ess = diagnostics.get('ess')
  log_weights = diagnostics.get('log_weights')
  if ess is not None and log_weights is not None:
    num_chains = np.size(log_weights)
    if float(ess) < ESS_MIN_FRACTION * num_chains:
      problems.append(
          f'the importance weights rest on a few chains (Kish ESS '
          f'{float(ess):.1f} of {num_chains}): raise '
          '--sampling.num_samples or narrow --sampling.wl_energy_range')
  return problems


def health_problems(diagnostics, sampler_name):
  """Signs that a finished sampling run failed, one line each.

  Each line says what went wrong and names the `--sampling.*` flag to
  change. The checks and their thresholds (module constants) are chosen so
  that healthy runs pass, with room to spare:

  * `'wl'`, `'rep'`, `'mh'`: mean acceptance of the latent moves below
    `ACCEPTANCE_MIN = 0.01` (for `'wl'` in the warm-up or in the
    Wang-Landau phase): the chains barely moved. For the Langevin kernels
    the step is too large (`--sampling.step_size`); `'mh'` has no step, and
    more steps are its only remedy (`--sampling.steps`).
  * `'wl'`, `'rep'`, `'ddls'`: non-finite energies in the energy trace:
    the chains diverged (`--sampling.step_size`).
  * `'wl'`, with `s_j` the share of the main-phase visits in bin `j`
    (energies outside the range count in the end bins):
    - `s_j >= END_BIN_FULL_SHARE = 0.9` for an end bin: the chains stayed
      below (above) the range and never reached it;
    - otherwise a pile-up in an end bin, measured on the collected steps
      (bias frozen): a share above `PILE_UP_RATIO = 3` times the bin's
      desired share `omega_j` and above `PILE_UP_MIN_SHARE = 0.2` (top
      bin) or `BOTTOM_PILE_UP_MIN_SHARE = 0.5` (bottom bin). The range ends
      where the chains are, so that the open-ended end bin holds much of
      their energies. At the top this hides the levels where the barriers
      may be (e.g. a top inside the modes' energies). At the bottom it only
      costs resolution among the lowest energies (the weights stay exact),
      and short runs, whose warm-up has not settled when it sets `E_lo`,
      show it (35% on a run of 30 steps), hence the higher bar. A top that
      ends below the barriers but above the modes' energies leaves no
      pile-up: the chains flatten the histogram within the range without
      crossing; the check of the starting states below catches that case;
    - more than `UNVISITED_END_FRACTION = 0.5` of the bins, at the bottom
      or at the top of the range, holding less than `RARE_SHARE = 0.001`
      of the visits together: the range reaches far beyond the chains, and
      most of its bins are wasted;
    - bins never visited between those ends (gaps among visited bins).
      Unvisited bins at the ends are not a problem in themselves: the
      automatic range ends a margin above the generator's energies, which
      short runs need not reach.
  * `'wl'`: more than `INITIAL_ABOVE_RANGE_MAX = 0.05` of the starting
    states (`z ~ p0`, the generator's own samples) above `E_hi`. The
    automatic range covers all but 5% of them by construction (its top is
    above their 95% quantile), so this flags a fixed
    `--sampling.wl_energy_range` that ends below the generator's own
    energies: the barriers between modes, which the generator's samples
    straddle, may lie above the range, where the bias cannot help the
    chains over them. Such a run keeps a flat histogram and a high
    effective sample size while the modes' masses are wrong
    (`tests/test_sampling_health.py`: 7 standard errors).
  * `'wl'`: Kish effective sample size of the importance weights below
    `ESS_MIN_FRACTION = 0.01` of the chains.

  A run can fail in ways no diagnostic shows (a mode that no chain ever
  found); an empty list is no proof of success.

  Args:
    diagnostics: the `diagnostics` dict of an eager `sample_latents` (numpy
      values and Python numbers).
    sampler_name: the sampler that made it.

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
  problems = _acceptance_problems(diagnostics, sampler_name)
  if sampler_name == 'wl':
    problems.extend(_wang_landau_problems(diagnostics))
  return problems
