"""Tests of `sample_latents` on a toy GAN whose latent target is known.

Generators `G_k(z) = z + b_k` and the logit `d(x) = mu . x` give
`E(z, k) = |z|^2 / 2 - mu . (z + b_k) + const`, so the target is
`z | k ~ N(mu, I)` and `P(k) ~ exp(mu . b_k)`. Every chain contributes one
independent final state, so four standard errors of a mean of `n` draws
(`n` = the Kish effective sample size for importance-resampled output, plus
the resampling noise) bound the error of each estimate.
"""

import functools
import re

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.sampling import sample_latents
from tf_stackelberg.sampling import SAMPLERS
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.energy import make_energy_fn
from tf_stackelberg.sampling.settings import min_num_steps
from tf_stackelberg.sampling.settings import SamplerSettings

MU = np.array([1., -0.5])
OFFSETS = np.array([[0., 0.], [1., 0.], [0., 1.]])
P_K = np.exp(OFFSETS @ MU) / np.exp(OFFSETS @ MU).sum()
NUM_CHAINS, NUM_STEPS = 1000, 150


def toy_gan(counter=None):
  offsets = tf.constant(OFFSETS, tf.float32)
  mu = tf.constant(MU, tf.float32)

  def generate_fn(z, k):
    return z + tf.gather(offsets, k)

  def logit_fn(x):
    if counter is not None:  # counts latent points passed through D
      counter.assign_add(tf.shape(x, out_type=tf.int64)[0])
    return tf.linalg.matvec(x, mu)

  return generate_fn, logit_fn


def toy_model(counter=None, calibration=None):
  return LatentModel(*toy_gan(counter), latent_dim=2, num_generators=3,
                     calibration=calibration)


@functools.lru_cache(maxsize=None)
def toy_run(sampler, joint=True):
  counter = tf.Variable(0, dtype=tf.int64)
  result = sample_latents(
      sampler, toy_model(counter), NUM_CHAINS, NUM_STEPS, [1, 2],
      SamplerSettings(step_size=0.1, joint=joint, num_bins=10, t0=20.),
      jit_compile=False)
  return result, int(counter.numpy())


def test_sampler_registry_names_and_unknown_name():
  assert SAMPLERS.names() == ['ddls', 'isir', 'mh', 'none', 'rep', 'wl']
  with pytest.raises(ConfigError, match=r"--sampling.sampler='hmc' is not a "
                     r'known sampler \(known: ddls, isir, mh, none, rep, wl\)'):
    SAMPLERS.get('hmc')
  with pytest.raises(ConfigError, match='known: ddls, isir, mh, none, rep, wl'):
    sample_latents('hmc', toy_model(), 8, 5, [1, 2])


@pytest.mark.parametrize('sampler', ['wl', 'rep', 'ddls', 'mh', 'none'])
def test_result_structure_and_cost_accounting(sampler):
  result, counted = toy_run(sampler)
  assert result.z.shape == (NUM_CHAINS, 2) and result.z.dtype == np.float32
  assert result.k.shape == (NUM_CHAINS,) and result.k.dtype == np.int32
  np.testing.assert_allclose(result.x, result.z + OFFSETS[result.k],
                             rtol=1e-6)
  energy_fn = make_energy_fn(*toy_gan())
  np.testing.assert_allclose(result.energy, energy_fn(result.z, result.k),
                             rtol=1e-5, atol=1e-5)
  d = result.diagnostics
  # Every pass through the discriminator is accounted for.
  assert d['num_energy_evaluations'] == counted
  steps = 0 if sampler == 'none' else NUM_STEPS
  for key in ('acceptance_per_step', 'energy_trace'):
    assert d[key].shape == (steps,)
  assert d['energy_trace_quantiles'].shape == (steps, 3)
  assert d['energy_histogram'].shape == (10,)
  assert d['bin_edges'].shape == (11,)
  main_steps = steps - d['num_warmup_steps'] if steps else 1
  assert d['energy_histogram'].sum() == NUM_CHAINS * main_steps
  assert d['energy_min'] <= d['energy_q01'] <= d['energy_q99'] <= d[
      'energy_max']
  # A healthy run: no problem to report.
  assert d['problems'] == []
  for key in ('acceptance_rate', 'ess', 'energy_ess', 'step_size',
              'energy_min', 'energy_max', 'generator_acceptance_rate'):
    assert isinstance(d[key], float), key
  if sampler == 'none':
    assert np.isnan(d['acceptance_rate'])
    assert d['num_gradient_evaluations'] == 0
    return
  assert 0. < d['acceptance_rate'] <= 1.
  assert d['generator_acceptance_rate'] > 0.  # the generator index moved
  np.testing.assert_allclose(d['acceptance_rate'],
                             d['acceptance_per_step'].mean(), rtol=1e-5)
  if sampler == 'wl':
    assert d['theta'].shape == (10,)
    np.testing.assert_allclose(d['target_bin_probs'].sum(), 1., rtol=1e-5)
    # The last quarter of the Wang-Landau steps (collect_fraction 0.25).
    assert d['collected_histogram'].sum() == NUM_CHAINS * (
        main_steps - int(main_steps * 0.75))
    assert d['initial_above_range'] <= 0.05
    # The unweighted output: the chains' final (k, z) and their energies.
    np.testing.assert_allclose(
        d['unweighted_energy'], energy_fn(d['unweighted_z'],
                                          d['unweighted_k']),
        rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(d['visit_counts'], d['energy_histogram'])
    np.testing.assert_allclose(d['bin_edges'][[0, -1]], d['energy_range'],
                               rtol=1e-6)
    assert 0 < d['num_warmup_steps'] < NUM_STEPS
    assert d['step_size'] != 0.1  # adapted
    assert 1. <= d['ess'] < NUM_CHAINS
    assert d['num_gradient_evaluations'] == d['num_energy_evaluations']
  else:
    assert d['ess'] == NUM_CHAINS
  if sampler == 'mh':
    assert d['num_gradient_evaluations'] == 0
    # One proposal per step (k and z together) plus the bootstrap.
    assert counted == NUM_CHAINS * (NUM_STEPS + 1)


def _tolerance(p_var, ess):
  # Resampling n = NUM_CHAINS draws from weighted states adds 1 / n.
  return 4. * np.sqrt(p_var * (1. / ess + 1. / NUM_CHAINS))


@pytest.mark.parametrize('sampler', ['wl', 'rep', 'ddls', 'mh'])
def test_joint_samplers_reach_the_known_target(sampler):
  result, _ = toy_run(sampler)
  ess = result.diagnostics['ess']
  # z | k ~ N(mu, I) whatever k; the ULA variance bias leaves means exact.
  np.testing.assert_array_less(np.abs(result.z.mean(0) - MU),
                               _tolerance(1., ess))
  freq = np.bincount(result.k, minlength=3) / NUM_CHAINS
  assert np.all(np.abs(freq - P_K) <= _tolerance(P_K * (1 - P_K), ess)), freq
  # The samples moved toward the target compared with the generator alone.
  target_mean = MU + P_K @ OFFSETS
  prior, _ = toy_run('none')
  assert (np.linalg.norm(result.x.mean(0) - target_mean) <
          0.25 * np.linalg.norm(prior.x.mean(0) - target_mean))


def test_prior_sampler_returns_the_generator_distribution():
  result, _ = toy_run('none')
  np.testing.assert_array_less(np.abs(result.z.mean(0)),
                               4. / np.sqrt(NUM_CHAINS))
  freq = np.bincount(result.k, minlength=3) / NUM_CHAINS
  np.testing.assert_array_less(np.abs(freq - 1. / 3),
                               4. * np.sqrt(2. / 9 / NUM_CHAINS))


def test_fixed_generator_chains_keep_a_uniform_generator_index():
  result, _ = toy_run('wl', joint=False)
  prior, _ = toy_run('none')
  ess = result.diagnostics['ess']
  assert result.diagnostics['generator_acceptance_rate'] == 0.
  # The weights are normalised per generator: k stays uniform.
  freq = np.bincount(result.k, minlength=3) / NUM_CHAINS
  assert np.all(np.abs(freq - 1. / 3) <= _tolerance(2. / 9, ess)), freq
  np.testing.assert_array_less(np.abs(result.z.mean(0) - MU),
                               _tolerance(1., ess))
  # Before resampling the chains kept the generator they were given.
  assert result.diagnostics['log_weights'].shape == (NUM_CHAINS,)
  assert set(np.unique(result.k)) <= set(np.unique(prior.k))


def _small_run(sampler='wl', num_steps=30, seed=(3, 4), calibration=None,
               chunk_steps=None, progress_callback=None, jit_compile=False,
               **settings):
  settings = dict(dict(step_size=0.1, num_bins=8), **settings)
  return sample_latents(sampler, toy_model(calibration=calibration), 64,
                        num_steps, list(seed), SamplerSettings(**settings),
                        chunk_steps=chunk_steps,
                        progress_callback=progress_callback,
                        jit_compile=jit_compile)


def test_same_seed_same_samples_whatever_the_chunking():
  calls = []
  whole = _small_run(num_steps=20, joint=False)
  chunked = _small_run(num_steps=20, joint=False, chunk_steps=7,
                       progress_callback=lambda *a: calls.append(a))
  # Warm-up (4 steps: one chunk) then the Wang-Landau phase in chunks of 7.
  assert calls == [(4, 20), (11, 20), (18, 20), (20, 20)]
  for a, b in zip(whole[:4], chunked[:4]):
    np.testing.assert_array_equal(a, b)
  for key in ('theta', 'energy_trace', 'acceptance_per_step'):
    np.testing.assert_array_equal(whole.diagnostics[key],
                                  chunked.diagnostics[key])


def test_same_seed_same_chain_other_seed_other_chain():
  first, second = _small_run('mh'), _small_run('mh')
  other = _small_run('mh', seed=(3, 5))
  for a, b in zip(first[:4], second[:4]):
    np.testing.assert_array_equal(a, b)
  assert np.any(other.z != first.z)


def test_fixed_energy_range_and_calibration():
  result = _small_run(energy_range=(-2., 6.), resample=False,
                      calibration=(2., 0.5))
  d = result.diagnostics
  assert d['num_warmup_steps'] == 0
  np.testing.assert_allclose(d['energy_range'], [-2., 6.])
  np.testing.assert_allclose(d['bin_edges'], np.linspace(-2., 6., 9),
                             rtol=1e-6)
  energy_fn = make_energy_fn(*toy_gan(), calibration=(2., 0.5))
  np.testing.assert_allclose(result.energy, energy_fn(result.z, result.k),
                             rtol=1e-5, atol=1e-5)
  # Without resampling the returned weights still sum to one.
  np.testing.assert_allclose(np.exp(d['log_weights']).sum(), 1., rtol=1e-5)


def test_runs_inside_a_traced_function_and_returns_tensors():
  generate_fn, logit_fn = toy_gan()

  @tf.function(autograph=False)
  def sample(seed):
    result = sample_latents(
        'rep', LatentModel(generate_fn, logit_fn, 2, 3), 16, 5, seed,
        jit_compile=False)
    return result.x, result.k, result.diagnostics['acceptance_per_step']

  x, k, acceptance = sample(tf.constant([5, 6]))
  assert x.shape == (16, 2) and k.shape == (16,)
  assert acceptance.shape == (5,)


@pytest.mark.parametrize('sampler', ['wl', 'mh'])
def test_sizes_may_be_tensors_inside_a_traced_function(sampler):
  # The exported endpoint runs with the number of chains and of steps known
  # only at run time; the samples are those of a run with static sizes.
  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
  def sample(n, steps):
    result = sample_latents(sampler, toy_model(), n, steps, [7, 8],
                            SamplerSettings(step_size=0.1, num_bins=8))
    return result.z, result.k, result.energy

  static = sample_latents(sampler, toy_model(), 48, 20, [7, 8],
                          SamplerSettings(step_size=0.1, num_bins=8),
                          jit_compile=False)
  for got, want in zip(sample(tf.constant(48), tf.constant(20)),
                       (static.z, static.k, static.energy)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('sampler, settings, minimum', [
    ('wl', {}, 2),
    ('wl', dict(num_warmup_steps=3), 4),
    ('wl', dict(energy_range=(-2., 6.)), 1),
    ('rep', {}, 1),
    ('ddls', {}, 1),
    ('mh', {}, 1),
    ('none', {}, 0),
])
def test_every_sampler_runs_with_its_minimum_number_of_steps(sampler, settings,
                                                             minimum):
  settings = SamplerSettings(step_size=0.1, num_bins=4, **settings)
  assert min_num_steps(sampler, settings) == minimum
  result = sample_latents(sampler, toy_model(), 8, minimum, [5, 6], settings,
                          jit_compile=False)
  assert result.z.shape == (8, 2) and np.all(np.isfinite(result.energy))
  if sampler != 'none':
    assert result.diagnostics['num_steps'] == minimum
  message = (f"`num_steps` must be at least {minimum} for sampler "
             f"'{sampler}', got {minimum - 1}.")
  with pytest.raises(ValueError, match=re.escape(message)):
    sample_latents(sampler, toy_model(), 8, minimum - 1, [5, 6], settings)


def test_min_num_steps_covers_every_registered_sampler():
  for name in SAMPLERS.names():
    assert min_num_steps(name) >= 0
  assert min_num_steps('wl') == 2  # default settings
  with pytest.raises(ConfigError, match='known: ddls, isir, mh, none, rep, wl'):
    min_num_steps('hmc')


def test_too_few_steps_as_a_tensor_fail_when_the_graph_runs():
  @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.int32)])
  def sample(steps):
    return sample_latents('wl', toy_model(), 8, steps, [7, 8],
                          SamplerSettings(step_size=0.1, num_bins=4)).z

  assert sample(tf.constant(2)).shape == (8, 2)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='`num_steps` must be at least 2 for sampler'):
    sample(tf.constant(1))


@pytest.mark.parametrize('settings, message', [
    (dict(num_bins=1), '`num_bins` must be at least 2, got 1.'),
    (dict(step_size=0.), '`step_size` must be a positive finite number, got '
     '0.0.'),
    (dict(step_size=float('inf')), '`step_size` must be a positive finite '
     'number, got inf.'),
    (dict(t0=0.), '`t0` must be a positive finite number, got 0.0.'),
    (dict(t0=-3.), '`t0` must be a positive finite number, got -3.0.'),
    (dict(energy_range=(1., float('nan'))), '`energy_range` must be two '
     'increasing finite numbers'),
])
def test_sampler_settings_reject_invalid_values(settings, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    SamplerSettings(**settings)


def test_invalid_arguments():
  with pytest.raises(ValueError):
    _small_run(sampler='hmc')
  with pytest.raises(ValueError):
    _small_run(num_steps=0)
  with pytest.raises(ValueError):
    _small_run(num_warmup_steps=30)
  with pytest.raises(ValueError):
    _small_run(energy_range=(1., 1.))
  with pytest.raises(ValueError):
    _small_run(sampler='rep', num_steps=0)
  with pytest.raises(ValueError):
    sample_latents('rep', toy_model(), 0, 5, [1, 2])
