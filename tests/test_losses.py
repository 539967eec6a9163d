"""Tests for tf_stackelberg.game.losses against values computed by hand.

The expected numbers follow the formulas of the Stackelberg GAN game with numpy:
BCE(l, 1) = softplus(-l), BCE(l, 0) = softplus(l), each a sum over the examples divided
by the global batch size; the discriminator counts its real term once per generator.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.game import losses

REAL = np.array([2.0, -1.0, 0.5, 0.0], np.float32)
FAKE = np.array([[1.0, -2.0, 0.25, 3.0],
                 [-0.5, 0.0, 1.5, -3.0],
                 [4.0, -0.75, 0.1, 2.5]], np.float32)  # K = 3 generators, B = 4


def softplus(x):
  x = np.asarray(x, np.float64)
  return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def test_softplus_helper_matches_math():
  assert softplus(0.0) == pytest.approx(math.log(2.0))
  assert softplus(3.0) == pytest.approx(math.log(1.0 + math.exp(3.0)))
  assert softplus(-3.0) == pytest.approx(math.log(1.0 + math.exp(-3.0)))


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_binary_cross_entropy_is_batch_mean_of_softplus(label):
  got = losses.binary_cross_entropy(tf.constant(FAKE), label, 4).numpy()
  sign = -1.0 if label == 1.0 else 1.0
  expected = softplus(sign * FAKE).sum(axis=-1) / 4.0
  assert got.shape == (3,)
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_binary_cross_entropy_divides_by_global_batch():
  # A replica holding 4 of 10 examples contributes its sum / 10.
  got = losses.binary_cross_entropy(tf.constant(REAL), 1.0, 10).numpy()
  assert got == pytest.approx(softplus(-REAL).sum() / 10.0, rel=1e-6)


def test_binary_cross_entropy_is_stable_for_large_logits():
  logits = tf.constant([100.0, -100.0])
  ones = losses.binary_cross_entropy(logits, 1.0, 2).numpy()
  zeros = losses.binary_cross_entropy(logits, 0.0, 2).numpy()
  assert np.isfinite(ones) and np.isfinite(zeros)
  assert ones == pytest.approx(50.0, rel=1e-6)   # (0 + 100) / 2
  assert zeros == pytest.approx(50.0, rel=1e-6)  # (100 + 0) / 2


def test_generator_loss_is_non_saturating_per_generator():
  result = losses.generator_loss(tf.constant(FAKE), 4)
  per_generator = softplus(-FAKE).mean(axis=1)
  np.testing.assert_allclose(result.per_generator.numpy(), per_generator, rtol=1e-6)
  assert result.total.numpy() == pytest.approx(per_generator.sum(), rel=1e-6)
  assert result.fake.numpy() == pytest.approx(per_generator.sum(), rel=1e-6)
  assert result.real.numpy() == 0.0
  # Non-saturating: the loss of a generator whose fakes D rejects confidently is large
  # (log(1 + e^10) ~ 10), not close to zero as the saturating log(1 - D) form would be.
  rejected = losses.generator_loss(tf.constant([[-10.0, -10.0]]), 2)
  assert rejected.total.numpy() == pytest.approx(softplus(10.0), rel=1e-6)


def test_discriminator_loss_counts_real_term_once_per_generator():
  result = losses.discriminator_loss(tf.constant(REAL), tf.constant(FAKE), 4)
  real = softplus(-REAL).mean()
  fake = softplus(FAKE).mean(axis=1)
  per_generator = 0.5 * (real + fake)
  assert result.real.numpy() == pytest.approx(real, rel=1e-6)
  np.testing.assert_allclose(result.per_generator.numpy(), per_generator, rtol=1e-6)
  # sum_k 1/2 [BCE(D(x), 1) + BCE(D(G_k(z)), 0)] = K/2 real + 1/2 sum_k fake_k.
  total = 3 * 0.5 * real + 0.5 * fake.sum()
  assert result.total.numpy() == pytest.approx(total, rel=1e-6)
  assert result.total.numpy() == pytest.approx(per_generator.sum(), rel=1e-6)
  # The fake part is the total without the K real halves.
  assert result.fake.numpy() == pytest.approx(0.5 * fake.sum(), rel=1e-5)


def test_discriminator_loss_with_one_generator_is_the_usual_gan_loss():
  result = losses.discriminator_loss(tf.constant(REAL), tf.constant(FAKE[:1]), 4)
  expected = 0.5 * (softplus(-REAL).mean() + softplus(FAKE[0]).mean())
  assert result.total.numpy() == pytest.approx(expected, rel=1e-6)


def test_losses_divide_by_global_batch_and_sum_over_replicas():
  """Two replicas with half the batch each sum to the loss of the whole batch."""
  halves = [(REAL[:2], FAKE[:, :2]), (REAL[2:], FAKE[:, 2:])]
  d_parts = [losses.discriminator_loss(tf.constant(r), tf.constant(f), 4).total.numpy()
             for r, f in halves]
  g_parts = [losses.generator_loss(tf.constant(f), 4).total.numpy() for _, f in halves]
  d_full = losses.discriminator_loss(tf.constant(REAL), tf.constant(FAKE), 4).total
  g_full = losses.generator_loss(tf.constant(FAKE), 4).total
  assert sum(d_parts) == pytest.approx(d_full.numpy(), rel=1e-6)
  assert sum(g_parts) == pytest.approx(g_full.numpy(), rel=1e-6)
  # Dividing by the local batch instead would double-count.
  local = losses.generator_loss(tf.constant(FAKE[:, :2]), 2).total.numpy()
  assert local == pytest.approx(2 * g_parts[0], rel=1e-6)


def test_classifier_loss_is_cross_entropy_against_generator_index():
  rng = np.random.default_rng(0)
  k, b = 3, 5
  logits = rng.normal(size=(k, b, k)).astype(np.float32)
  got = losses.classifier_loss(tf.constant(logits), b).numpy()
  log_norm = np.log(np.exp(logits.astype(np.float64)).sum(axis=-1))  # [K, B]
  picked = np.stack([logits[i, :, i] for i in range(k)])                # [K, B]
  expected = (log_norm - picked).sum() / b
  assert got == pytest.approx(expected, rel=1e-6)
  # With a global batch twice the local one, the replica's share halves.
  half = losses.classifier_loss(tf.constant(logits), 2 * b).numpy()
  assert half == pytest.approx(expected / 2.0, rel=1e-6)


def test_classifier_loss_is_small_when_head_names_the_generator():
  k, b = 4, 3
  confident = np.full((k, b, k), -20.0, np.float32)
  for i in range(k):
    confident[i, :, i] = 20.0
  wrong = np.roll(confident, 1, axis=-1)
  assert losses.classifier_loss(tf.constant(confident), b).numpy() < 1e-6
  # Every example wrong by a margin of 40: loss ~ 40 per generator.
  assert losses.classifier_loss(tf.constant(wrong), b).numpy() == pytest.approx(
      k * 40.0, rel=1e-4)
