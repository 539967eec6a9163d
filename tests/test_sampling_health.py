"""Energy range of `'wl'` on barriers above the warm-up, and `health_problems`.

The toy "GAN" has a 2-D latent, `G(z) = z`, and a logit chosen so that the
latent energy is

```none
E(z) = log(2 pi) + sum_i [(z_i - c_i)^2 / 2 + h exp(-z_i^2 / (2 eps^2))],
```

a Gaussian cut into four quadrant modes by two ridges of height `h = 8`
along the axes. It factorises over the coordinates, so the mass of each
quadrant and the energy of the lowest passes between them (about 10.0 and
10.1) follow from one-dimensional quadrature. A MALA warm-up started from
the prior settles into the quadrants within a few steps, below the passes,
while about a fifth of the starting states (the prior draws, i.e. the
generator's own samples) lie on the ridges above them.

Standard errors of the Wang-Landau estimates come from the chains' weighted
reservoirs (`resample=False`): each chain keeps one state with its total
weight, and the self-normalised estimator `sum_c w_c 1[z_c in m]` with
normalised weights has the delta-method variance `sum_c w_c^2 (1[z_c in m] -
p_m)^2`, the chains being independent given the frozen bias. Here it is
within about 25% of the error the Kish size of the weights implies.

The runs use flat desired visits (`warmup_visit_fraction=0`), which keep the
chains above the passes about 40% of the time. With the default shaped visits
the chains spend more of their time inside the quadrants and cross less often:
on the same seed and range the masses are still 6 standard errors off after
800 steps and 4 after 2000, which no diagnostic flags.
"""

import functools
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.common.jsonable import to_jsonable
from tf_stackelberg.sampling import sample_latents
from tf_stackelberg.sampling import SamplerSettings
from tf_stackelberg.sampling import diagnostics as diagnostics_lib
from tf_stackelberg.sampling.diagnostics import health_problems
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.samplers import wl as wl_sampler

HEIGHT, WIDTH = 8., 0.25
CENTER = np.array([0.5, -0.3])
NUM_CHAINS, NUM_STEPS = 1000, 800
# Flat desired visits (no warm-up shaping): the chains spend about 40% of
# their time above the passes, and cross them often enough in 800 steps.
SETTINGS = dict(step_size=0.05, num_bins=20, warmup_visit_fraction=0.,
                resample=False)
# Fixed ranges from the minimum of E (2.096): up to below the passes (the
# top the pooled rule gives), and up to inside the quadrants' energies.
BELOW_PASSES = (2.1, 9.7)
INSIDE_MODES = (2.1, 3.1)


def ridge_energy(z):
  z = tf.convert_to_tensor(z)
  center = tf.constant(CENTER, z.dtype)
  return tf.reduce_sum(
      0.5 * tf.square(z - center) +
      HEIGHT * tf.exp(-tf.square(z) / (2. * WIDTH**2)), axis=-1) + tf.cast(
          np.log(2. * np.pi), z.dtype)


def ridge_model():
  """`E(z) = -log p0(z) - d(G(z))` equals `ridge_energy` for `G(z) = z`."""

  def generate_fn(z, k):
    del k
    return z

  def logit_fn(x):
    # -log p0(x) = |x|^2 / 2 + log(2 pi) for a 2-D latent.
    return (0.5 * tf.reduce_sum(tf.square(x), axis=-1) +
            np.log(2. * np.pi) - ridge_energy(x))

  return LatentModel(generate_fn, logit_fn, latent_dim=2)


@functools.lru_cache(maxsize=None)
def coordinate_grid():
  xs = np.linspace(-9., 9., 360001)
  energies = [0.5 * (xs - c)**2 + HEIGHT * np.exp(-xs**2 / (2 * WIDTH**2))
              for c in CENTER]
  return xs, energies


def quadrant_masses():
  """Exact masses of the quadrants (+,+), (-,+), (-,-), (+,-)."""
  xs, energies = coordinate_grid()
  positive = []
  for energy in energies:
    density = np.exp(-(energy - energy.min()))
    positive.append(density[xs > 0].sum() / density.sum())
  p1, p2 = positive
  return np.array([p1 * p2, (1 - p1) * p2, (1 - p1) * (1 - p2),
                   p1 * (1 - p2)])


def passes():
  """Lowest energies on the ridges `z_1 = 0` and `z_2 = 0`; minimum of E."""
  _, (e1, e2) = coordinate_grid()
  const = np.log(2 * np.pi)
  ridge1 = const + 0.5 * CENTER[0]**2 + HEIGHT + e2.min()
  ridge2 = const + 0.5 * CENTER[1]**2 + HEIGHT + e1.min()
  return np.array([ridge1, ridge2]), const + e1.min() + e2.min()


def quadrant(z):
  return np.where(z[:, 0] > 0, np.where(z[:, 1] > 0, 0, 3),
                  np.where(z[:, 1] > 0, 1, 2))


def weighted_quadrant_masses(result):
  """Estimates and delta-method standard errors from the weighted chains."""
  weights = np.exp(result.diagnostics['log_weights'].astype(np.float64))
  np.testing.assert_allclose(weights.sum(), 1., rtol=1e-4)
  inside = quadrant(result.z)[:, np.newaxis] == np.arange(4)
  estimate = weights @ inside
  se = np.sqrt(np.sum(weights[:, np.newaxis]**2 * (inside - estimate)**2,
                      axis=0))
  return estimate, se


@functools.lru_cache(maxsize=None)
def ridge_run(energy_range=None, num_steps=NUM_STEPS):
  return sample_latents(
      'wl', ridge_model(), NUM_CHAINS, num_steps, [1, 2],
      SamplerSettings(energy_range=energy_range, **SETTINGS))


def test_toy_has_exact_masses_and_passes_above_the_warmup():
  # The energy of the model is the toy's, and the quadrature is exact.
  z = tf.random.stateless_normal([64, 2], seed=[0, 3])
  np.testing.assert_allclose(ridge_model().energy_fn()(z, 0),
                             ridge_energy(z), rtol=1e-5, atol=1e-5)
  masses = quadrant_masses()
  np.testing.assert_allclose(masses.sum(), 1.)
  assert masses.min() > 0.05 and masses.max() < 0.6  # four unequal modes
  barriers, minimum = passes()
  np.testing.assert_allclose(barriers, [10.13, 9.97], atol=0.01)

  # Warm-up as in `samplers/wl.py`: 1/5 of the steps of MALA from the prior.
  num_warmup = NUM_STEPS // 5
  initial = tf.random.stateless_normal([NUM_CHAINS, 2], seed=[4, 5])
  mala = tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(
      lambda z: -ridge_energy(z), step_size=SETTINGS['step_size'])

  @tf.function(jit_compile=True, autograph=False)
  def warmup():
    return tfp.mcmc.sample_chain(
        num_warmup, initial, kernel=mala, num_burnin_steps=0,
        trace_fn=lambda _, r: -r.accepted_results.target_log_prob,
        seed=[6, 7])

  energies = warmup().trace.numpy()
  initial_energies = ridge_energy(initial).numpy()
  # A fifth of the starting states lie above the passes; the warm-up chains,
  # settled into the quadrants, stay below them.
  assert np.mean(initial_energies > barriers.max()) > 0.15
  assert np.quantile(energies[num_warmup // 2:], 0.99) < barriers.min() - 2.
  # With the former margin of 0.25 the pooled rule ends below the passes, the rule
  # with the initial states' own quantile above them; the default margin (0.75,
  # docs/design.md 14.4) already reaches above them with the pooled rule alone.
  pooled = np.concatenate([initial_energies[np.newaxis], energies])
  settled = energies[num_warmup // 2:]
  lo, hi = wl_sampler.energy_range_from_warmup(pooled, settled, margin=0.25)
  assert minimum < float(lo) < minimum + 0.1
  assert float(hi) < barriers.min()
  lo_new, hi_new = wl_sampler.energy_range_from_warmup(
      pooled, settled, margin=0.25, initial_energies=initial_energies)
  assert float(lo_new) == float(lo)
  assert float(hi_new) > barriers.max() + 3.
  _, hi_default = wl_sampler.energy_range_from_warmup(pooled, settled)
  assert float(hi_default) > barriers.max()


def test_automatic_range_covers_the_passes_and_masses_are_right():
  result = ridge_run()
  d = result.diagnostics
  barriers, _ = passes()
  assert d['energy_range'][1] > barriers.max() + 3.
  # All but 5% of the starting states lie inside the range by construction.
  assert d['initial_above_range'] <= 0.05
  assert d['problems'] == []
  estimate, se = weighted_quadrant_masses(result)
  exact = quadrant_masses()
  # The chains did cross between the quadrants: chains that stayed put would leave
  # one quadrant's weight to a quarter of them, se ~ 0.1. The flat default keeps an
  # ESS of about 0.3 of the chains (0.9 before), hence 0.04 rather than 0.03.
  assert np.all(se < 0.04), se
  np.testing.assert_array_less(np.abs(estimate - exact), 4. * se)


def test_range_ending_below_the_passes_gives_wrong_masses_and_a_problem():
  # The range of the pooled rule, fixed by hand: the bias flattens the
  # levels inside the quadrants, but the chains stay where they started.
  barriers, minimum = passes()
  assert minimum == pytest.approx(BELOW_PASSES[0], abs=0.01)
  assert barriers.min() > BELOW_PASSES[1]
  result = ridge_run(energy_range=BELOW_PASSES)
  estimate, se = weighted_quadrant_masses(result)
  exact = quadrant_masses()
  assert np.max(np.abs(estimate - exact) / se) > 4.
  d = result.diagnostics
  # The histogram is flat (no pile-up in an end bin) and the weights look
  # healthy; what gives the range away is where the chains started.
  shares = d['collected_histogram'] / d['collected_histogram'].sum()
  assert shares.max() < 2. / 20
  assert d['ess'] > 0.5 * NUM_CHAINS
  assert d['initial_above_range'] > 0.15
  assert len(d['problems']) == 1, d['problems']
  assert 'of the starting states' in d['problems'][0]
  assert 'raise the top of --sampling.wl_energy_range' in d['problems'][0]


def test_range_ending_inside_the_modes_piles_up_in_the_top_bin():
  result = ridge_run(energy_range=INSIDE_MODES, num_steps=300)
  d = result.diagnostics
  shares = d['collected_histogram'] / d['collected_histogram'].sum()
  assert shares[-1] > 3. / 20
  pile_up = [p for p in d['problems'] if 'piled up in the top bin' in p]
  assert len(pile_up) == 1, d['problems']
  assert '--sampling.wl_energy_range' in pile_up[0]


# ----------------------------------------------------------- unit checks
def healthy_wl(num_bins=10, num_chains=100):
  """Diagnostics of a healthy `'wl'` run, as `sample_latents` returns them."""
  desired = np.full([num_bins], 1. / num_bins)
  histogram = np.full([num_bins], 1000, np.int64)
  return dict(
      acceptance_rate=0.6, acceptance_per_step=np.full([50], 0.6),
      num_warmup_steps=10, energy_trace=np.linspace(5., 3., 50),
      energy_histogram=histogram, collected_histogram=histogram // 2,
      bin_edges=np.linspace(0., 10., num_bins + 1), target_bin_probs=desired,
      initial_above_range=0.01, ess=0.6 * num_chains,
      log_weights=np.full([num_chains], -np.log(num_chains)))


def test_healthy_diagnostics_have_no_problems():
  for sampler in ('wl', 'rep', 'ddls', 'mh', 'none'):
    assert health_problems(healthy_wl(), sampler) == []
  # 'none' has no chain: NaN acceptance, empty traces.
  assert health_problems(dict(acceptance_rate=float('nan'),
                              acceptance_per_step=np.zeros([0]),
                              energy_trace=np.zeros([0])), 'none') == []


@pytest.mark.parametrize('sampler, fix', [
    ('rep', 'lower --sampling.step_size'),
    ('wl', 'lower --sampling.step_size'),
    ('mh', 'raise --sampling.steps'),
])
def test_chains_that_barely_moved(sampler, fix):
  d = healthy_wl()
  d['acceptance_per_step'] = np.full([50], 0.004)
  d['acceptance_rate'] = 0.004
  problems = health_problems(d, sampler)
  assert len(problems) == 1 and problems[0].startswith(
      'chains barely moved (acceptance 0.004')
  assert problems[0].endswith(fix)
  # Wang-Landau: the warm-up alone stuck (its step is not adapted).
  d = healthy_wl()
  d['acceptance_per_step'][:10] = 0.
  problems = health_problems(d, 'wl')
  assert problems == ['chains barely moved (acceptance 0.000 in the '
                      'warm-up): lower --sampling.step_size']
  # Just above the threshold is not a problem, and ddls has no acceptance.
  d['acceptance_per_step'][:10] = diagnostics_lib.ACCEPTANCE_MIN + 1e-3
  assert health_problems(d, 'wl') == []


def test_diverged_chains():
  d = healthy_wl()
  d['energy_trace'][-5:] = np.inf
  assert health_problems(d, 'ddls') == [
      'the chains diverged (non-finite energies): lower --sampling.step_size']


def test_range_never_reached_and_pile_ups():
  d = healthy_wl()
  d['energy_histogram'] = np.array([0] * 9 + [5000])
  problems = health_problems(d, 'wl')
  assert problems == ['100% of the Wang-Landau visits lie above the energy '
                      'range [0, 10], which the chains never reached: raise '
                      '--sampling.steps or set --sampling.wl_energy_range']
  d['num_warmup_steps'] = 0  # a fixed range
  d['energy_histogram'] = np.array([4600] + [50] * 8 + [0])
  problems = health_problems(d, 'wl')
  assert problems == ['92% of the Wang-Landau visits lie below the energy '
                      'range [0, 10], which the chains never reached: move '
                      'the bottom of --sampling.wl_energy_range']
  # A pile-up: more than 3 times the desired share and more than 20%.
  d = healthy_wl()
  d['collected_histogram'] = np.array([100] * 9 + [420])
  problems = health_problems(d, 'wl')
  assert len(problems) == 1 and problems[0].startswith(
      'the chains piled up in the top bin (E_hi = 10): 32% of the '
      'collected visits, 10% desired')
  d['collected_histogram'] = np.array([100] * 9 + [300])  # 2.5 times
  assert health_problems(d, 'wl') == []
  d['target_bin_probs'] = np.array([0.6 / 9] * 9 + [0.4])  # desired there
  d['collected_histogram'] = np.array([100] * 9 + [420])
  d['num_steps'] = 10000  # shaped visits are a problem of their own on short runs
  assert health_problems(d, 'wl') == []
  # The bottom bin needs half of the visits: short runs whose warm-up had not
  # settled pile up there without harm to the weights.
  d = healthy_wl()
  d['collected_histogram'] = np.array([600] + [100] * 9)  # 40%
  assert health_problems(d, 'wl') == []
  d['collected_histogram'] = np.array([1000] + [100] * 9)  # 53%
  assert health_problems(d, 'wl') == [
      'the chains piled up in the bottom bin (E_lo = 0): 53% of the collected '
      'visits, 10% desired; the energy range ends where the chains are: '
      'raise --sampling.steps or set --sampling.wl_energy_range']


def test_unvisited_bins():
  d = healthy_wl()
  # Unvisited bins at the top are the margin of the range: no problem.
  d['energy_histogram'] = np.array([1000] * 6 + [1, 0, 0, 0])
  assert health_problems(d, 'wl') == []
  d['energy_histogram'] = np.array([1000] * 4 + [1] + [0] * 5)
  assert health_problems(d, 'wl') == [
      'the chains hardly ever climbed above E = 4 (the highest 6 of 10 '
      'Wang-Landau bins have 0.02% of the visits): raise --sampling.steps '
      'or set --sampling.wl_energy_range']
  d['energy_histogram'] = np.array([1000, 1000, 0, 1000, 0, 0] + [1000] * 4)
  assert health_problems(d, 'wl') == [
      '3 of the 10 Wang-Landau bins were never visited, between visited '
      'ones: lower --sampling.wl_bins or raise --sampling.steps']


def test_starting_states_above_the_range_and_few_effective_samples():
  d = healthy_wl()
  d['initial_above_range'] = 0.3
  d['ess'] = 0.5
  problems = health_problems(d, 'wl')
  assert problems[0].startswith("30% of the starting states (the "
                                "generator's own samples) lie above the "
                                'energy range (E_hi = 10)')
  assert problems[1] == ('the importance weights rest on a few chains (Kish '
                         'ESS 0.5 of 100): raise --sampling.num_samples or '
                         'narrow --sampling.wl_energy_range')
  d['initial_above_range'] = wl_sampler.INITIAL_ABOVE_RANGE_MAX
  d['ess'] = wl_sampler.ESS_MIN_FRACTION * 100
  assert health_problems(d, 'wl') == []


def test_problems_of_a_run_are_reported_and_serialise():
  # The example of the flag documentation: a huge step runs "fine" but no
  # chain moves.
  result = sample_latents('rep', ridge_model(), 64, 20, [3, 4],
                          SamplerSettings(step_size=1e6), jit_compile=False)
  d = result.diagnostics
  assert d['acceptance_rate'] == 0.
  assert d['problems'] == [
      'chains barely moved (acceptance 0.000): lower --sampling.step_size']
  json.dumps(to_jsonable(d), allow_nan=False)
  # Every diagnostic of a Wang-Landau run, problems included, is strict
  # JSON once converted as the command line does.
  wl_result = ridge_run(energy_range=BELOW_PASSES)
  text = json.dumps(to_jsonable(wl_result.diagnostics), allow_nan=False)
  assert json.loads(text)['problems'] == wl_result.diagnostics['problems']
