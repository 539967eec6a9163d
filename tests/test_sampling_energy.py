"""Tests of the latent energy and of the discriminator calibration.

Statistical checks compare estimates with the truth at four standard errors,
the standard errors coming from the Fisher information of the fit.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tf_stackelberg.sampling import calibration
from tf_stackelberg.sampling import energy as energy_lib


def test_standard_normal_log_prob_matches_scipy_over_all_axes():
  z = np.random.default_rng(0).normal(size=[5, 2, 3]).astype(np.float64)
  got = energy_lib.standard_normal_log_prob(tf.constant(z)).numpy()
  want = stats.multivariate_normal(np.zeros(6), np.eye(6)).logpdf(
      z.reshape(5, 6))
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_energy_is_prior_term_minus_calibrated_logit():
  rng = np.random.default_rng(1)
  latent_dim, num_generators = 3, 4
  weights = rng.normal(size=[num_generators, latent_dim, 2])
  offsets = rng.normal(size=[num_generators, 2])
  direction = np.array([0.7, -1.3])

  def generate_fn(z, k):
    return (tf.einsum('bd,bde->be', z, tf.gather(weights, k)) +
            tf.gather(offsets, k))

  def logit_fn(x):  # trailing axis of one, as Keras heads return
    return tf.linalg.matvec(x, direction)[:, tf.newaxis]

  z = rng.normal(size=[6, latent_dim])
  k = np.array([0, 1, 2, 3, 1, 0], np.int32)
  scale, shift = 1.7, -0.4
  energy_fn = energy_lib.make_energy_fn(generate_fn, logit_fn,
                                        calibration=(scale, shift))
  x = np.einsum('bd,bde->be', z, weights[k]) + offsets[k]
  prior = -0.5 * np.sum(z**2, -1) - 0.5 * latent_dim * math.log(2 * math.pi)
  want = -prior - (scale * x @ direction + shift)
  np.testing.assert_allclose(energy_fn(tf.constant(z), k).numpy(), want,
                             rtol=1e-12)
  assert energy_fn.calibration == (scale, shift)
  # A scalar generator index is broadcast to every row.
  x2 = z @ weights[2] + offsets[2]
  want2 = -prior - (scale * x2 @ direction + shift)
  np.testing.assert_allclose(energy_fn(tf.constant(z), 2).numpy(), want2,
                             rtol=1e-12)


def _fisher_standard_errors(d, y, a, b):
  """Standard errors of (a, b) of a logistic regression at (a, b)."""
  features = np.stack([d, np.ones_like(d)], -1)
  p = 1. / (1. + np.exp(-(features @ np.array([a, b]))))
  info = (features * (p * (1 - p))[:, None]).T @ features
  return np.sqrt(np.diag(np.linalg.inv(info)))


def test_calibration_recovers_known_logistic_parameters():
  rng = np.random.default_rng(2)
  true_a, true_b = 1.7, -0.4
  d = rng.normal(scale=1.5, size=20000)
  y = rng.uniform(size=d.size) < 1. / (1. + np.exp(-(true_a * d + true_b)))
  a, b = calibration.fit_calibration(d[y], d[~y], correct_class_ratio=False)
  se_a, se_b = _fisher_standard_errors(d, y, a, b)
  assert abs(a - true_a) < 4 * se_a
  assert abs(b - true_b) < 4 * se_b
  # The fit is deterministic.
  assert (a, b) == calibration.fit_calibration(d[y], d[~y],
                                              correct_class_ratio=False)


def test_calibration_recovers_log_density_ratio_with_unequal_sets():
  # real ~ N(1, 1), fake ~ N(0, 1): log p_real / p_fake = x - 1/2. The raw
  # "discriminator" reports d = 2 x + 0.3, so the calibrated logit
  # a * d + b equals the log ratio for a = 1/2, b = -0.65, whatever the
  # number of points of each kind once the class ratio is corrected.
  rng = np.random.default_rng(3)
  real = 2. * rng.normal(1., 1., size=4000) + 0.3
  fake = 2. * rng.normal(0., 1., size=12000) + 0.3
  a, b = calibration.fit_calibration(real, fake)
  d = np.concatenate([real, fake])
  y = np.concatenate([np.ones_like(real), np.zeros_like(fake)])
  se_a, se_b = _fisher_standard_errors(d, y, a,
                                       b + math.log(real.size / fake.size))
  assert abs(a - 0.5) < 4 * se_a
  assert abs(b + 0.65) < 4 * se_b


def test_calibration_stays_finite_on_separable_sets():
  a, b = calibration.fit_calibration([3., 4., 5.], [-5., -4., -3.])
  assert np.isfinite(a) and np.isfinite(b) and a > 0


def test_calibration_rejects_empty_sets():
  with pytest.raises(ValueError):
    calibration.fit_calibration([], [1.])


def test_calibrate_fits_the_logits_of_real_and_generated_samples():
  # real ~ N(1, 1), fake ~ N(0, 1) in 2-D along a direction u: with the raw
  # logit d(x) = 2 u . x + 0.3, the log ratio u . x - 1/2 is a d + b with
  # a = 1/2, b = -0.65 (as in the test above, through the samples).
  rng = np.random.default_rng(4)
  u = np.array([0.6, 0.8])
  real = rng.normal(size=[4000, 2]) + u
  fake = rng.normal(size=[12000, 2])

  def logit_fn(x):  # a Keras-like head with a trailing axis of one
    return (2. * tf.linalg.matvec(tf.constant(x), tf.constant(u)) +
            0.3)[:, tf.newaxis]

  a, b = calibration.calibrate(logit_fn, real, fake)
  assert (a, b) == pytest.approx(calibration.fit_calibration(
      2. * real @ u + 0.3, 2. * fake @ u + 0.3), rel=1e-9)
  d = np.concatenate([2. * real @ u + 0.3, 2. * fake @ u + 0.3])
  y = np.concatenate([np.ones(4000), np.zeros(12000)])
  se_a, se_b = _fisher_standard_errors(d, y, a, b + math.log(4000 / 12000))
  assert abs(a - 0.5) < 4 * se_a
  assert abs(b + 0.65) < 4 * se_b


def test_latent_model_energy_and_checks():
  def generate_fn(z, k):
    return z + tf.cast(k, z.dtype)[:, tf.newaxis]

  def logit_fn(x):
    return tf.reduce_sum(x, axis=-1)

  model = energy_lib.LatentModel(generate_fn, logit_fn, latent_dim=2,
                                 num_generators=3, calibration=(2, -1))
  assert model.calibration == (2., -1.) and model.dtype == tf.float32
  z = tf.constant([[0.5, -1.], [2., 0.]])
  k = tf.constant([0, 2])
  want = energy_lib.make_energy_fn(generate_fn, logit_fn, (2., -1.))(z, k)
  np.testing.assert_allclose(model.energy_fn()(z, k), want, rtol=1e-6)
  with pytest.raises(ValueError):
    energy_lib.LatentModel(generate_fn, logit_fn, latent_dim=0)
