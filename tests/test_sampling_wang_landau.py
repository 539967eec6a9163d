"""Tests of the Wang-Landau (SAMC) kernel on targets with known answers.

The main target is the 1-D mixture `0.25 N(-4, 1) + 0.75 N(4, 1)`, whose
energy `E = -log p` has a barrier of about 6.6 nats between the modes. Its
bin masses and the biased law `pi_theta ~ p exp(-theta[J(E)])` are computed
on a fine grid, so the kernel's stationary law can be checked exactly.
Tolerances are four standard errors, derived from independent chains (exact
multinomial errors when chains start in the stationary law; the spread of
per-chain estimates across chains otherwise).
"""

import collections
import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from tf_stackelberg.sampling import energy_bins
from tf_stackelberg.sampling import estimators
from tf_stackelberg.sampling import unnest
from tf_stackelberg.sampling import wang_landau as wl_lib
from tf_stackelberg.sampling.samplers import wl as wl_sampler
from tf_stackelberg.sampling.settings import DEFAULTS
from tf_stackelberg.sampling.wang_landau import WangLandau

tfd = tfp.distributions

WEIGHTS = np.array([0.25, 0.75])
# The automatic energy range's default margin (docs/design.md 14.4).
MARGIN = DEFAULTS.range_margin
MEANS = np.array([-4., 4.])
E_LO, E_HI, NUM_BINS = 1.2, 9.2, 8  # the barrier at z = 0 has E ~ 8.9

INNER_KERNELS = {
    'mala': wl_lib.make_mala_kernel,
    'rwm': lambda fn, s: tfp.mcmc.RandomWalkMetropolis(
        fn, new_state_fn=tfp.mcmc.random_walk_normal_fn(scale=s)),
    # 0.6 * s with three leapfrog steps avoids the half-period resonance of
    # step 1 on a unit-variance mode.
    'hmc': lambda fn, s: tfp.mcmc.HamiltonianMonteCarlo(fn, 0.6 * s, 3),
}


def mixture_energy(dtype=tf.float32):
  """`E(z) = -log(sum_i w_i N(z; m_i, 1))` of the first coordinate of `z`."""
  log_weights = tf.constant(np.log(WEIGHTS) - 0.5 * np.log(2 * np.pi), dtype)
  means = tf.constant(MEANS, dtype)

  def energy(z):
    z = z[..., :1]
    return -tf.reduce_logsumexp(log_weights - 0.5 * tf.square(z - means),
                                axis=-1)

  return energy


def gaussian_energy(z):
  return 0.5 * tf.reduce_sum(tf.square(z), axis=-1)


@functools.lru_cache(maxsize=None)
def grid():
  """Fine grid of the mixture: points, densities, bins, spacing."""
  xs = np.linspace(-12., 12., 240001)
  density = (WEIGHTS[0] * np.exp(-0.5 * (xs - MEANS[0])**2) +
             WEIGHTS[1] * np.exp(-0.5 * (xs - MEANS[1])**2)) / np.sqrt(
                 2 * np.pi)
  width = (E_HI - E_LO) / NUM_BINS
  bins = np.clip(np.floor((-np.log(density) - E_LO) / width), 0,
                 NUM_BINS - 1).astype(int)
  return xs, density, bins, xs[1] - xs[0]


def bin_masses():
  _, density, bins, dx = grid()
  return np.bincount(bins, weights=density * dx, minlength=NUM_BINS)


def biased_law(theta):
  """Grid probabilities of `pi_theta ~ p exp(-theta[J(E)])`."""
  _, density, bins, _ = grid()
  law = density * np.exp(-theta[bins])
  return law / law.sum()


def sample_biased_target(theta, num, seed):
  """Exact draws from `pi_theta` (grid + jitter)."""
  xs, _, _, dx = grid()
  rng = np.random.default_rng(seed)
  index = rng.choice(xs.size, size=num, p=biased_law(theta))
  return xs[index] + rng.uniform(-dx / 2, dx / 2, size=num)


def assert_same_structure_shapes_dtypes(a, b):
  tf.nest.assert_same_structure(a, b)
  for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)):
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    assert x.dtype == y.dtype
    assert x.shape == y.shape


# ----------------------------------------------------------------- helpers
def test_gain_schedule_is_one_then_t0_over_t():
  gains = wl_lib.gain_schedule(tf.constant([1, 299, 300, 301, 600, 3000]),
                               300.).numpy()
  np.testing.assert_allclose(gains, [1., 1., 1., 300. / 301, .5, .1],
                             rtol=1e-6)


def test_energy_to_bin_edges_outliers_and_non_finite():
  energy = tf.constant([0.99, 1., 1.49, 1.5, 4.99, 5., 7.,
                        np.nan, np.inf, -np.inf])
  got = energy_bins.energy_to_bin(energy, 1., 5., 8).numpy()
  np.testing.assert_array_equal(got, [0, 0, 0, 1, 7, 7, 7, 7, 7, 0])
  assert got.dtype == np.int32


def test_energy_range_from_warmup_quantiles_and_margin():
  values = np.concatenate([np.arange(101.), [np.nan, np.inf]])
  lo, hi = wl_sampler.energy_range_from_warmup(values, lower_q=0.1, upper_q=0.9,
                                           margin=0.5)
  assert (float(lo), float(hi)) == pytest.approx((10., 90. + 40.))
  # Defaults: 1% quantile of the settled energies up to the 99% quantile of
  # all, plus the default margin (0.75) times the span.
  assert MARGIN == 0.75
  lo, hi = wl_sampler.energy_range_from_warmup(
      values, settled_energies=np.arange(20., 121.))
  assert (float(lo), float(hi)) == pytest.approx((21., 99. + MARGIN * 78.))
  # A degenerate span becomes max(1, |E_lo| / 1000).
  lo, hi = wl_sampler.energy_range_from_warmup(np.full([7], 3000.))
  assert (float(lo), float(hi)) == pytest.approx((3000.,
                                                  3003. + MARGIN * 3.))
  with pytest.raises(tf.errors.InvalidArgumentError, match='No finite'):
    wl_sampler.energy_range_from_warmup([np.nan])
  with pytest.raises(ValueError):
    wl_sampler.energy_range_from_warmup([1., 2.], lower_q=1.0, upper_q=0.5)


def test_energy_range_top_reaches_the_initial_energies_alone():
  # Four chains, one starting far above the modes; the warm-up settles at
  # energies in [2, 3]. Pooled, the high start is a quarter of a percent of
  # the energies, above their 99% quantile; the top then reaches the 95%
  # quantile of the initial energies alone.
  initial = np.array([2., 30., 4., 3.])
  warmup = 2. + np.random.default_rng(0).uniform(size=[100, 4])
  pooled = np.concatenate([initial[np.newaxis], warmup], axis=0)
  lo, hi = wl_sampler.energy_range_from_warmup(pooled, warmup[50:])
  assert float(hi) < 4.
  lo_new, hi_new = wl_sampler.energy_range_from_warmup(
      pooled, warmup[50:], initial_energies=initial)
  assert float(lo_new) == pytest.approx(float(lo))  # E_lo as before
  top = np.quantile(initial, 0.95)  # 26.1, linear interpolation
  assert float(hi_new) == pytest.approx(top + MARGIN * (top - float(lo)),
                                        rel=1e-5)
  # The pooled quantile still counts when it is the higher one.
  _, hi_low_start = wl_sampler.energy_range_from_warmup(
      pooled, warmup[50:], initial_energies=np.full([4], -10.))
  assert float(hi_low_start) == pytest.approx(float(hi))
  _, hi_q = wl_sampler.energy_range_from_warmup(
      pooled, warmup[50:], initial_energies=initial, initial_q=1.)
  assert float(hi_q) == pytest.approx(30. + MARGIN * (30. - float(lo)),
                                      rel=1e-5)
  with pytest.raises(tf.errors.InvalidArgumentError, match='No finite'):
    wl_sampler.energy_range_from_warmup(pooled, initial_energies=[np.nan])
  with pytest.raises(ValueError, match='initial_q=0.0'):
    wl_sampler.energy_range_from_warmup(pooled, initial_energies=initial,
                                    initial_q=0.)


def test_energy_range_rule_matches_numpy_quantiles():
  # The rule in TensorFlow (float32 trace of [steps, chains]) against the
  # same rule written with numpy's linear quantiles in float64.
  rng = np.random.default_rng(5)
  trace = rng.gamma(3., 2., size=[40, 256]).astype(np.float32)
  trace[3, 7], trace[30, 1] = np.inf, np.nan
  settled = trace[20:]
  lo, hi = wl_sampler.energy_range_from_warmup(tf.constant(trace),
                                           tf.constant(settled))
  assert lo.dtype == tf.float32 and hi.dtype == tf.float32

  def finite(x):
    x = np.asarray(x, np.float64).reshape(-1)
    return x[np.isfinite(x)]

  want_lo = np.quantile(finite(settled), 0.01)
  want_hi = np.quantile(finite(trace), 0.99)
  want_hi += MARGIN * (want_hi - want_lo)
  np.testing.assert_allclose([lo, hi], [want_lo, want_hi], rtol=1e-5)


def test_target_bin_probs_mix_the_warmup_histogram_with_a_flat_one():
  settled = tf.constant([[0.5, 1.5], [1.6, 3.9], [1.2, 9.]])
  probs = wl_sampler.target_bin_probs_from_warmup(settled, 0., 4., 4, 0.4)
  counts = np.array([1., 3., 0., 2.])  # 9. falls into the last bin
  np.testing.assert_allclose(probs, 0.4 * counts / 6. + 0.6 / 4., rtol=1e-6)
  np.testing.assert_allclose(np.sum(probs), 1., rtol=1e-6)
  assert wl_sampler.target_bin_probs_from_warmup(settled, 0., 4., 4, 0.) is None
  np.testing.assert_array_equal(
      energy_bins.energy_histogram(settled, 0., 4., 4), counts)


def test_importance_weights_and_resampling_follow_theta():
  theta = tf.constant([0., np.log(2.), np.log(5.)])
  bins = tf.constant([0, 1, 2, 2])
  log_w = energy_bins.importance_log_weights(theta, bins).numpy()
  np.testing.assert_allclose(np.exp(log_w), [1 / 13, 2 / 13, 5 / 13, 5 / 13],
                             rtol=1e-6)
  num = 20000
  draws = estimators.weighted_resample(tf.range(4), log_w, num, seed=[4, 2])
  freq = np.bincount(draws.numpy(), minlength=4) / num
  p = np.exp(log_w)
  np.testing.assert_array_less(np.abs(freq - p), 4 * np.sqrt(p * (1 - p) / num))
  # Systematic: every count is floor or ceil of its expectation.
  counts = np.bincount(draws.numpy(), minlength=4)
  assert np.all(np.abs(counts - num * p) < 1.0 + 1e-6), counts
  # Same seed, same draws.
  again = estimators.weighted_resample(tf.range(4), log_w, num, seed=[4, 2])
  np.testing.assert_array_equal(draws.numpy(), again.numpy())
  with pytest.raises(ValueError):
    energy_bins.importance_log_weights(theta)


def test_resampling_equal_weights_keeps_every_state_once():
  # Multinomial draws would keep about 63% of 1,000 equal states; systematic
  # resampling returns each of them exactly once, for every seed.
  for seed in range(5):
    draws = estimators.weighted_resample(tf.range(1000), tf.zeros([1000]), 1000,
                                         seed=[seed, 3]).numpy()
    np.testing.assert_array_equal(np.sort(draws), np.arange(1000))
  # Half the weight on one state of 1,000: it takes 500 draws, the others one
  # draw for every other state.
  log_w = np.zeros(1000)
  log_w[0] = np.log(999.)
  draws = estimators.weighted_resample(tf.range(1000), log_w, 1000, seed=[0, 3]).numpy()
  counts = np.bincount(draws, minlength=1000)
  assert counts[0] == 500 and set(np.unique(counts[1:])) <= {0, 1}
  assert counts[1:].sum() == 500


# -------------------------------------------------------------- structure
@pytest.mark.parametrize('inner', sorted(INNER_KERNELS))
@pytest.mark.parametrize('shared_bias', [True, False])
def test_bootstrap_and_one_step_have_the_same_fixed_structure(inner,
                                                              shared_bias):
  energy_fn = mixture_energy()
  kernel = WangLandau(energy_fn, E_LO, E_HI, num_bins=NUM_BINS,
                      step_size=0.5, make_inner_kernel_fn=INNER_KERNELS[inner],
                      shared_bias=shared_bias, num_adaptation_steps=10,
                      adaptation_window=1)
  state = tf.constant([[-4.], [-3.], [0.5], [4.5], [5.]])
  results = kernel.bootstrap_results(state)
  theta_shape = [NUM_BINS] if shared_bias else [5, NUM_BINS]
  assert results.theta.shape == theta_shape
  assert results.visit_counts.shape == theta_shape
  assert results.visit_counts.dtype == tf.int32
  for name in ('step', 'window_steps', 'num_windows'):
    assert getattr(results, name).dtype == tf.int32
    assert getattr(results, name).shape == []
  assert results.seed.shape == [2]
  np.testing.assert_allclose(results.energy, energy_fn(state), rtol=1e-6)

  step = tf.function(kernel.one_step, autograph=False)
  for i in range(3):
    new_state, new_results = step(state, results, seed=tf.constant([i, 7]))
    assert_same_structure_shapes_dtypes(results, new_results)
    state, results = new_state, new_results
    # The energy read back from the inner kernel is that of the new state.
    np.testing.assert_allclose(results.energy, energy_fn(state), rtol=1e-5)
  assert int(results.step) == 3
  assert int(tf.reduce_sum(results.visit_counts)) == 15
  # Eager steps give the same structure too.
  _, eager_results = kernel.one_step(state, results, seed=[9, 9])
  assert_same_structure_shapes_dtypes(results, eager_results)
  # The `unnest` helpers find the inner acceptance ratio and the bias.
  assert unnest.get_innermost(eager_results,
                              'log_accept_ratio').shape == [5]
  assert unnest.get_outermost(eager_results, 'theta') is eager_results.theta


def test_parameters_copy_and_is_calibrated():
  energy_fn = mixture_energy()
  kernel = WangLandau(energy_fn, E_LO, E_HI, num_bins=NUM_BINS, step_size=0.3,
                      bias_gain_t0=50.)
  assert kernel.parameters['num_bins'] == NUM_BINS
  assert kernel.parameters['bias_gain_t0'] == 50.
  assert set(kernel.parameters) >= {
      'energy_fn', 'energy_lo', 'energy_hi', 'num_bins', 'step_size',
      'make_inner_kernel_fn', 'shared_bias', 'bias_gain_t0',
      'num_bias_adaptation_steps', 'initial_bias', 'target_accept_prob',
      'num_adaptation_steps', 'adaptation_window', 'adaptation_rate', 'name'}
  other = kernel.copy(num_bins=4)
  assert other.num_bins == 4 and other.step_size == 0.3
  assert not kernel.is_calibrated
  np.testing.assert_allclose(kernel.bin_edges(),
                             np.linspace(E_LO, E_HI, NUM_BINS + 1))
  with pytest.raises(ValueError):
    WangLandau(energy_fn, 2., 1.)


@pytest.mark.parametrize('arguments, message', [
    (dict(num_bins=1), r'`num_bins` must be at least 2, got 1\.'),
    (dict(num_bins=0), r'`num_bins` must be at least 2, got 0\.'),
    (dict(num_bins=2.5), r'`num_bins` must be a Python integer, got 2\.5'),
    (dict(step_size=0.), r'`step_size` must be positive, got 0\.0\.'),
    (dict(step_size=-0.1), r'`step_size` must be positive, got -0\.1\.'),
    (dict(step_size=np.array(float('nan'))),
     r'`step_size` must be positive, got nan\.'),
    (dict(bias_gain_t0=0.), r'`bias_gain_t0` must be positive, got 0\.0\.'),
    (dict(bias_gain_t0=-5.), r'`bias_gain_t0` must be positive, got -5\.0'),
    (dict(target_bin_probs=[0.5, 0.6]),
     r'`target_bin_probs` must sum to 1 \(within 0\.0001; the sum is 1\.1\), '
     r'got \[0\.5, 0\.6\]\.'),
    (dict(target_bin_probs=[0.5, 0.5 - 2e-4]),
     r'`target_bin_probs` must sum to 1'),
    (dict(target_bin_probs=np.array([1.2, -0.2])),
     r'`target_bin_probs` must be non-negative, got \[1\.2, -0\.2\]\.'),
    (dict(target_bin_probs=tf.constant([0.2, 0.3, 0.5])),
     r'`target_bin_probs` must have shape \[num_bins\] = \[2\], got shape '
     r'\(3,\)'),
    (dict(target_accept_prob=1.), r'`target_accept_prob` must be in \(0, 1\)'),
    (dict(energy_lo=np.inf), r'`energy_lo` must be finite, got inf\.'),
    (dict(energy_hi=0.5),
     r'Need `energy_hi > energy_lo`, got energy_lo=1\.0 and energy_hi=0\.5'),
])
def test_static_arguments_are_checked_when_the_kernel_is_built(arguments,
                                                               message):
  # Python numbers, numpy arrays and eager tensors are known at once.
  kwargs = dict(energy_lo=1., energy_hi=3., num_bins=2)
  kwargs.update(arguments)
  with pytest.raises(ValueError, match=message):
    WangLandau(gaussian_energy, **kwargs)


def test_valid_static_arguments_pass_and_validate_args_is_a_parameter():
  # A sum within 1e-4 of one passes (float32 rounding of a computed omega).
  kernel = WangLandau(gaussian_energy, tf.constant(1.), np.float32(3.),
                      num_bins=np.int64(2), step_size=np.float32(0.1),
                      target_bin_probs=np.array([0.3, 0.7 + 5e-5],
                                                np.float32))
  assert kernel.num_bins == 2 and isinstance(kernel.num_bins, int)
  assert kernel.parameters['validate_args'] is False
  assert not kernel.validate_args
  assert kernel.copy(validate_args=True).validate_args


@functools.lru_cache(maxsize=None)
def _traced_bootstrap_and_step(validate_args):
  """Builds the kernel from graph tensors, as `samplers/wl.py` does."""

  @tf.function(autograph=False)
  def run(energy_lo, step_size, t0, probs):
    kernel = WangLandau(gaussian_energy, energy_lo, 3., num_bins=2,
                        step_size=step_size, bias_gain_t0=t0,
                        target_bin_probs=probs, validate_args=validate_args)
    state = tf.zeros([4, 1])
    _, results = kernel.one_step(state, kernel.bootstrap_results(state),
                                 seed=[1, 2])
    return results.theta

  return run


@pytest.mark.parametrize('argument, value, message', [
    ('energy_lo', 4., 'Need `energy_hi > energy_lo`'),
    ('energy_lo', np.nan, '`energy_lo` must be finite'),
    ('step_size', 0., '`step_size` must be positive'),
    ('t0', -1., '`bias_gain_t0` must be positive'),
    ('probs', [0.7, 0.7], '`target_bin_probs` must sum to 1'),
    ('probs', [1.5, -0.5], '`target_bin_probs` must be non-negative'),
])
def test_graph_arguments_are_asserted_with_validate_args(argument, value,
                                                         message):
  valid = dict(energy_lo=1., step_size=0.1, t0=10., probs=[0.4, 0.6])
  run_checked = _traced_bootstrap_and_step(validate_args=True)
  run_unchecked = _traced_bootstrap_and_step(validate_args=False)
  args = {k: tf.constant(v, tf.float32) for k, v in valid.items()}
  theta = run_checked(**args)
  assert theta.shape == [2]
  args[argument] = tf.constant(value, tf.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    run_checked(**args)
  # Without `validate_args` the same values are trusted, as before.
  run_unchecked(**args)


def _run(kernel, state, num_steps, seed, trace_fn):
  return tfp.mcmc.sample_chain(num_steps, state, kernel=kernel,
                               trace_fn=trace_fn, seed=seed)


def test_same_seed_same_chain_other_seed_other_chain():
  kernel = WangLandau(mixture_energy(), E_LO, E_HI, num_bins=NUM_BINS,
                      step_size=0.5, num_adaptation_steps=20)
  state = tf.fill([8, 1], -4.)
  run = tf.function(functools.partial(
      _run, kernel, state, 40, trace_fn=lambda _, r: r.theta),
                    autograph=False)
  first, second, other = (run(seed=tf.constant(seed))
                          for seed in ([1, 2], [1, 2], [1, 3]))
  np.testing.assert_array_equal(first.all_states, second.all_states)
  np.testing.assert_array_equal(first.trace, second.trace)
  assert np.any(first.all_states.numpy() != other.all_states.numpy())


def test_eager_and_function_agree_exactly():
  kernel = WangLandau(mixture_energy(tf.float64), E_LO, E_HI,
                      num_bins=NUM_BINS, step_size=0.5, bias_gain_t0=5.,
                      num_adaptation_steps=10, adaptation_window=2)
  state = tf.constant([[-4.5], [-1.], [0.], [3.], [4.]], tf.float64)

  def run():
    return _run(kernel, state, 12, [5, 6],
                lambda _, r: (r.theta, r.log_step_size, r.energy))

  eager, graph = run(), tf.function(run)()
  for a, b in zip(tf.nest.flatten(eager), tf.nest.flatten(graph)):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


DeterministicResults = collections.namedtuple(
    'DeterministicResults',
    ['target_log_prob', 'log_accept_ratio', 'is_accepted'])


class DeterministicAscent(tfp.mcmc.TransitionKernel):
  """Test kernel without randomness: `z + h * grad log p`, always accepted.

  XLA draws its stateless random numbers with another algorithm than the
  TensorFlow kernels, so compiled and uncompiled chains are only equal in
  law; with this inner kernel the wrapper's own computations (bias,
  histogram, step size, cache refresh) can be compared exactly.
  """

  def __init__(self, target_log_prob_fn, step_size):
    self._parameters = dict(target_log_prob_fn=target_log_prob_fn,
                            step_size=step_size)

  @property
  def is_calibrated(self):
    return False

  def one_step(self, current_state, previous_kernel_results, seed=None):
    _, grad = tfp.math.value_and_gradient(
        self._parameters['target_log_prob_fn'], current_state)
    step = tf.cast(self._parameters['step_size'], current_state.dtype)
    new_state = current_state + step * grad
    tlp = self._parameters['target_log_prob_fn'](new_state)
    ratio = tf.minimum(tlp - previous_kernel_results.target_log_prob, 0.)
    return new_state, DeterministicResults(tlp, ratio,
                                           tf.ones_like(tlp, dtype=tf.bool))

  def bootstrap_results(self, init_state):
    tlp = self._parameters['target_log_prob_fn'](init_state)
    return DeterministicResults(tlp, tf.zeros_like(tlp),
                               tf.ones_like(tlp, dtype=tf.bool))


def test_xla_matches_graph_for_the_wrapper_computations():
  kernel = WangLandau(mixture_energy(tf.float64), E_LO, E_HI,
                      num_bins=NUM_BINS, step_size=0.05, bias_gain_t0=3.,
                      make_inner_kernel_fn=DeterministicAscent,
                      num_adaptation_steps=10, adaptation_window=2,
                      target_accept_prob=0.9)
  state = tf.constant([[-6.], [-1.], [0.5], [3.], [7.]], tf.float64)

  def run():
    return _run(kernel, state, 12, [5, 6],
                lambda _, r: (r.theta, r.log_step_size, r.energy,
                              r.visit_counts))

  graph = tf.function(run)()
  xla = tf.function(run, jit_compile=True)()
  for a, b in zip(tf.nest.flatten(graph), tf.nest.flatten(xla)):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
  assert np.ptp(graph.trace[1].numpy()) > 0.  # the step size did change


# --------------------------------------------------- stationary behaviour
@pytest.mark.parametrize('inner,jit_compile', [
    ('mala', True), ('mala', False), ('rwm', False), ('hmc', False)])
def test_frozen_bias_leaves_biased_target_invariant(inner, jit_compile):
  # With the bias frozen the kernel is an ordinary MCMC kernel for
  # pi_theta; starting from exact draws, the final states of independent
  # chains are exact draws too, so multinomial errors apply.
  masses = bin_masses()
  theta = 0.8 * np.log(masses)  # spreads pi_theta over all bins
  num_chains = 4000
  init = sample_biased_target(theta, num_chains, seed=11)
  kernel = WangLandau(mixture_energy(), E_LO, E_HI, num_bins=NUM_BINS,
                      step_size=1.0, make_inner_kernel_fn=INNER_KERNELS[inner],
                      initial_bias=theta.astype(np.float32),
                      num_bias_adaptation_steps=0)

  @tf.function(jit_compile=jit_compile)
  def run():
    return tfp.mcmc.sample_chain(
        5, tf.constant(init[:, None], tf.float32), kernel=kernel,
        num_burnin_steps=0, trace_fn=lambda _, r: (r.bin_index, r.theta),
        seed=[3, 4])

  out = run()
  final = out.all_states[-1, :, 0].numpy()
  bins, thetas = (t.numpy() for t in out.trace)
  np.testing.assert_allclose(thetas[-1], theta, rtol=1e-6, atol=1e-6)
  assert np.mean(np.abs(final - init)) > 0.1  # the chains did move
  xs, density, grid_bins, _ = grid()
  law = biased_law(theta)
  expected = np.bincount(grid_bins, weights=law, minlength=NUM_BINS)
  freq = np.bincount(bins[-1], minlength=NUM_BINS) / num_chains
  se = np.sqrt(expected * (1 - expected) / num_chains)
  np.testing.assert_array_less(np.abs(freq - expected), 4 * se)
  mean = np.sum(law * xs)
  sd = np.sqrt(np.sum(law * (xs - mean)**2))
  assert abs(final.mean() - mean) < 4 * sd / np.sqrt(num_chains)


NUM_CHAINS, ADAPT_STEPS, FROZEN_STEPS = 64, 1500, 1500


@functools.lru_cache(maxsize=None)
def adaptive_run(inner):
  """Adaptive phase (bias and step size learn), then a frozen phase."""
  kernel = WangLandau(mixture_energy(), E_LO, E_HI, num_bins=NUM_BINS,
                      step_size=1.0, make_inner_kernel_fn=INNER_KERNELS[inner],
                      bias_gain_t0=100., num_bias_adaptation_steps=ADAPT_STEPS,
                      num_adaptation_steps=ADAPT_STEPS // 2,
                      target_accept_prob=0.5)
  state = tf.fill([NUM_CHAINS, 1], -4.)  # every chain starts in the small mode

  @tf.function(autograph=False)
  def run():
    return tfp.mcmc.sample_chain(
        ADAPT_STEPS + FROZEN_STEPS, state, kernel=kernel,
        trace_fn=lambda _, r: (r.bin_index, r.theta, r.energy), seed=[1, 2])

  out = run()
  return (out.all_states[..., 0].numpy(),) + tuple(t.numpy() for t in out.trace)


@pytest.mark.parametrize('inner', sorted(INNER_KERNELS))
def test_bias_flattens_visits_and_reweighting_recovers_moments(inner):
  states, bins, thetas, _ = adaptive_run(inner)
  # 1. Flat histogram over the second half of the adaptive phase: per-chain
  # visit frequencies give the standard error of their mean.
  late = bins[ADAPT_STEPS // 2:ADAPT_STEPS]
  per_chain = np.stack([(late == j).mean(0) for j in range(NUM_BINS)], -1)
  freq = per_chain.mean(0)
  se = per_chain.std(0, ddof=1) / np.sqrt(NUM_CHAINS)
  np.testing.assert_array_less(np.abs(freq - 1. / NUM_BINS), 4 * se + 1e-3)
  # 2. With the bias frozen, chains are independent, and the self-normalised
  # estimator with weights exp(theta[J]) targets expectations under pi.
  # Its standard error follows from per-chain sums (delta method).
  theta = thetas[-1]
  np.testing.assert_array_equal(thetas[ADAPT_STEPS], theta)
  frozen_states = states[ADAPT_STEPS:]
  weights = np.exp(theta[bins[ADAPT_STEPS:]] - theta.max())
  for f, truth, max_se in ((lambda x: x, WEIGHTS @ MEANS, 0.5),
                           (lambda x: x**2, 17., 0.5),
                           (lambda x: (x > 0.).astype(float), 0.75, 0.07)):
    a = np.sum(weights * f(frozen_states), axis=0)
    b = np.sum(weights, axis=0)
    estimate = a.sum() / b.sum()
    se = np.std(a - estimate * b, ddof=1) / np.sqrt(NUM_CHAINS) / b.mean()
    assert se < max_se  # the chains did cross between the modes
    assert abs(estimate - truth) < 4 * se


def test_flattening_crosses_the_barrier_that_plain_mala_does_not():
  states, _, _, energies = adaptive_run('mala')
  mala = tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(
      lambda z: -mixture_energy()(z), step_size=1.0)

  @tf.function(autograph=False)
  def run():
    return tfp.mcmc.sample_chain(
        ADAPT_STEPS, tf.fill([NUM_CHAINS, 1], -4.), kernel=mala,
        trace_fn=lambda _, r: r.accepted_results.target_log_prob,
        seed=[1, 2])

  out = run()
  plain_states = out.all_states[..., 0].numpy()
  plain_energies = -out.trace.numpy()
  wl_states = states[:ADAPT_STEPS]
  assert np.mean(np.any(wl_states > 0., axis=0)) > 0.9
  assert np.mean(np.any(plain_states > 0., axis=0)) < 0.1
  def spread(e):
    lo, hi = np.quantile(e, [0.01, 0.99])
    return hi - lo

  assert spread(energies[:ADAPT_STEPS]) > 2. * spread(plain_energies)


def test_per_chain_bias_flattens_each_chain():
  # Unimodal target: every chain learns its own bias from its own visits.
  num_chains, num_steps = 16, 3000
  lo = 0.
  kernel = WangLandau(gaussian_energy, lo, 4., num_bins=4, step_size=1.0,
                      shared_bias=False, bias_gain_t0=50.)

  @tf.function(autograph=False)
  def run():
    return tfp.mcmc.sample_chain(
        num_steps, tf.zeros([num_chains, 2]), kernel=kernel,
        trace_fn=lambda _, r: r.bin_index, seed=[8, 9],
        return_final_kernel_results=True)

  out = run()
  late = out.trace.numpy()[num_steps // 2:]
  per_chain = np.stack([(late == j).mean(0) for j in range(4)], -1)
  freq = per_chain.mean(0)
  se = per_chain.std(0, ddof=1) / np.sqrt(num_chains)
  np.testing.assert_array_less(np.abs(freq - 0.25), 4 * se + 1e-3)
  theta = out.final_kernel_results.theta.numpy()
  assert theta.shape == (num_chains, 4)
  # Rows sum to their initial sum (zero): the update adds zero in total.
  np.testing.assert_allclose(theta.sum(-1), 0., atol=1e-3)
  # For a 2-D standard normal, E = |z|^2 / 2 is exponential(1): the bin
  # masses are e^-j - e^-(j+1) (the last bin takes the tail), and the
  # learned bias matches their logs up to a constant, chain by chain.
  masses = np.exp(-np.arange(4.)) - np.append(np.exp(-np.arange(1., 4.)), 0.)
  centred = theta - theta.mean(-1, keepdims=True)
  truth = np.log(masses) - np.log(masses).mean()
  spread = centred.std(0, ddof=1) / np.sqrt(num_chains)
  np.testing.assert_array_less(np.abs(centred.mean(0) - truth),
                               4 * spread + 0.05)


def test_desired_visit_distribution_is_reached():
  # SAMC with a non-uniform desired distribution omega: the chains spend the
  # fraction omega_j of their time in bin j.
  omega = np.array([0.4, 0.3, 0.2, 0.1])
  num_chains, num_steps = 32, 2000
  kernel = WangLandau(gaussian_energy, 0., 4., num_bins=4, step_size=1.0,
                      bias_gain_t0=50., target_bin_probs=omega)

  @tf.function(autograph=False)
  def run():
    return tfp.mcmc.sample_chain(
        num_steps, tf.zeros([num_chains, 2]), kernel=kernel,
        trace_fn=lambda _, r: r.bin_index, seed=[4, 4])

  late = run().trace.numpy()[num_steps // 2:]
  per_chain = np.stack([(late == j).mean(0) for j in range(4)], -1)
  se = per_chain.std(0, ddof=1) / np.sqrt(num_chains)
  np.testing.assert_array_less(np.abs(per_chain.mean(0) - omega),
                               4 * se + 1e-3)


# ---------------------------------------------------------- step adaptation
def test_inner_cache_matches_fresh_bootstrap_after_bias_and_step_change():
  # After every step the bias and the step size change; the cached drift and
  # log-density of the inner MALA must then be those of a kernel built
  # afresh with the new values (the forward and reverse proposal densities
  # of the next MH ratio both use the current step).
  energy_fn = mixture_energy(tf.float64)
  kernel = WangLandau(energy_fn, E_LO, E_HI, num_bins=NUM_BINS,
                      step_size=0.2, bias_gain_t0=10., num_adaptation_steps=50,
                      adaptation_window=1, adaptation_rate=2.)
  state = tf.constant([[-4.], [-2.], [1.], [3.5]], tf.float64)
  results = kernel.bootstrap_results(state)
  for i in range(6):
    state, results = kernel.one_step(state, results, seed=[i, 0])
    fresh = kernel._inner_kernel(  # pylint: disable=protected-access
        results.theta, results.log_step_size).bootstrap_results(
            state).accepted_results
    cached = results.inner_results.accepted_results
    np.testing.assert_allclose(cached.target_log_prob, fresh.target_log_prob,
                               rtol=1e-10)
    np.testing.assert_allclose(cached.diffusion_drift[0],
                               fresh.diffusion_drift[0], rtol=1e-10,
                               atol=1e-12)
  assert abs(float(results.log_step_size) - np.log(0.2)) > 1e-3


def test_step_size_adapts_toward_target_then_stops():
  num_chains, adapt_steps = 64, 400
  kernel = WangLandau(gaussian_energy, 0., 6., num_bins=6, step_size=1e-3,
                      num_adaptation_steps=adapt_steps, target_accept_prob=0.6)

  @tf.function(autograph=False)
  def run():
    return tfp.mcmc.sample_chain(
        adapt_steps + 200, tf.zeros([num_chains, 5]), kernel=kernel,
        trace_fn=lambda _, r: (r.log_step_size, r.accept_prob), seed=[2, 5])

  log_steps, accept = (t.numpy() for t in run().trace)
  assert np.exp(log_steps[-1]) > 100 * 1e-3
  # Frozen after the adaptation phase (diminishing, then no adaptation).
  np.testing.assert_array_equal(log_steps[adapt_steps:], log_steps[-1])
  late = accept[adapt_steps:].mean(-1)
  se = late.std(ddof=1) / np.sqrt(late.size) * np.sqrt(10.)  # autocorrelation
  assert abs(late.mean() - 0.6) < max(4 * se, 0.1)
