"""Tests for tf_stackelberg.game.losses against values computed by hand.

The expected numbers follow the formulas of each loss family with numpy, on small
explicit logits (K = 3 games, B = 4 examples): every term is a sum over the examples
divided by the global batch size, and the discriminator counts its real term once per
game. For the non-saturating family BCE(l, 1) = softplus(-l), BCE(l, 0) = softplus(l).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.config.sections import LossConfig
from tf_stackelberg.game.losses import base
from tf_stackelberg.game.losses import hinge
from tf_stackelberg.game.losses import least_squares
from tf_stackelberg.game.losses import non_saturating
from tf_stackelberg.game.losses import wasserstein
from tf_stackelberg.game.losses.classifier import classifier_loss
from tf_stackelberg.game.losses.registry import LOSSES

REAL = np.array([2.0, -1.0, 0.5, 0.0], np.float32)
FAKE = np.array([[1.0, -2.0, 0.25, 3.0],
                 [-0.5, 0.0, 1.5, -3.0],
                 [4.0, -0.75, 0.1, 2.5]], np.float32)  # K = 3 generators, B = 4
K, B = FAKE.shape


def softplus(x):
  x = np.asarray(x, np.float64)
  return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def relu(x):
  return np.maximum(np.asarray(x, np.float64), 0.0)


# Per family: (generator per-game loss [K], D's real term, D's per-game fake terms [K])
# computed by hand, each a mean over the batch of B.
HAND = {
    "non_saturating": lambda r, f: (softplus(-f).mean(1), 0.5 * softplus(-r).mean(),
                                    0.5 * softplus(f).mean(1)),
    "hinge": lambda r, f: (-f.astype(np.float64).mean(1), relu(1.0 - r).mean(),
                           relu(1.0 + f).mean(1)),
    "wasserstein": lambda r, f: (-f.astype(np.float64).mean(1),
                                 -r.astype(np.float64).mean(),
                                 f.astype(np.float64).mean(1)),
    "least_squares": lambda r, f: (0.5 * ((f - 1.0) ** 2).mean(1),
                                   0.5 * ((r - 1.0) ** 2).mean(), 0.5 * (f ** 2).mean(1)),
}
MODULES = {"non_saturating": non_saturating, "hinge": hinge, "wasserstein": wasserstein,
           "least_squares": least_squares}
FAMILIES = sorted(HAND)


def test_softplus_helper_matches_math():
  assert softplus(0.0) == pytest.approx(math.log(2.0))
  assert softplus(3.0) == pytest.approx(math.log(1.0 + math.exp(3.0)))
  assert softplus(-3.0) == pytest.approx(math.log(1.0 + math.exp(-3.0)))


def test_every_family_is_registered_with_its_functions():
  assert set(FAMILIES) <= set(LOSSES.names())
  for name in FAMILIES:
    family = LOSSES.get(name)(LossConfig())
    assert isinstance(family, base.LossFamily)
    assert family.generator_loss is MODULES[name].generator_loss
    assert family.discriminator_loss is MODULES[name].discriminator_loss
    assert (family.penalty is None) == (name != "wasserstein")


# ------------------------------------------------------------------ helpers
@pytest.mark.parametrize("label", [0.0, 1.0])
def test_binary_cross_entropy_is_batch_mean_of_softplus(label):
  got = base.binary_cross_entropy(tf.constant(FAKE), label, 4).numpy()
  sign = -1.0 if label == 1.0 else 1.0
  expected = softplus(sign * FAKE).sum(axis=-1) / 4.0
  assert got.shape == (3,)
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_binary_cross_entropy_divides_by_global_batch():
  # A replica holding 4 of 10 examples contributes its sum / 10.
  got = base.binary_cross_entropy(tf.constant(REAL), 1.0, 10).numpy()
  assert got == pytest.approx(softplus(-REAL).sum() / 10.0, rel=1e-6)


def test_binary_cross_entropy_is_stable_for_large_logits():
  logits = tf.constant([100.0, -100.0])
  ones = base.binary_cross_entropy(logits, 1.0, 2).numpy()
  zeros = base.binary_cross_entropy(logits, 0.0, 2).numpy()
  assert np.isfinite(ones) and np.isfinite(zeros)
  assert ones == pytest.approx(50.0, rel=1e-6)   # (0 + 100) / 2
  assert zeros == pytest.approx(50.0, rel=1e-6)  # (100 + 0) / 2


def test_batch_mean_sums_the_last_axis_over_the_global_batch():
  x = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
  np.testing.assert_allclose(base.batch_mean(x, 3).numpy(), [2.0, 5.0])
  np.testing.assert_allclose(base.batch_mean(x, 6).numpy(), [1.0, 2.5])


# ------------------------------------------------------------------ the families
@pytest.mark.parametrize("name", FAMILIES)
def test_generator_loss_matches_hand_computation(name):
  per_generator, _, _ = HAND[name](REAL, FAKE)
  result = MODULES[name].generator_loss(tf.constant(FAKE), B)
  assert isinstance(result, base.GANLosses)
  assert result.per_generator.shape == (K,)
  np.testing.assert_allclose(result.per_generator.numpy(), per_generator, rtol=1e-6,
                             atol=1e-7)
  assert result.total.numpy() == pytest.approx(per_generator.sum(), rel=1e-6)
  assert result.fake.numpy() == pytest.approx(per_generator.sum(), rel=1e-6)
  assert result.real.numpy() == 0.0


@pytest.mark.parametrize("name", FAMILIES)
def test_discriminator_loss_counts_the_real_term_once_per_game(name):
  _, real, fake = HAND[name](REAL, FAKE)
  result = MODULES[name].discriminator_loss(tf.constant(REAL), tf.constant(FAKE), B)
  assert result.real.numpy() == pytest.approx(real, rel=1e-6)
  np.testing.assert_allclose(result.per_generator.numpy(), real + fake, rtol=1e-6,
                             atol=1e-7)
  # sum_k [real + fake_k] = K real + sum_k fake_k.
  assert result.total.numpy() == pytest.approx(K * real + fake.sum(), rel=1e-6)
  assert result.fake.numpy() == pytest.approx(fake.sum(), rel=1e-5)


def test_hinge_values_by_hand():
  # relu(1 - r) for r = 2, -1, 0.5, 0 is 0, 2, 0.5, 1: mean 0.875.
  result = hinge.discriminator_loss(tf.constant(REAL), tf.constant(FAKE[:1]), B)
  # relu(1 + f) for f = 1, -2, 0.25, 3 is 2, 0, 1.25, 4: mean 1.8125.
  assert result.real.numpy() == pytest.approx(0.875)
  assert result.total.numpy() == pytest.approx(0.875 + 1.8125)
  # -mean(1, -2, 0.25, 3) = -0.5625.
  assert hinge.generator_loss(tf.constant(FAKE[:1]), B).total.numpy() == pytest.approx(
      -0.5625)


def test_least_squares_values_by_hand():
  # 1/2 mean (r - 1)^2 = 1/2 mean(1, 4, 0.25, 1) = 0.78125.
  result = least_squares.discriminator_loss(tf.constant(REAL), tf.constant(FAKE[:1]), B)
  assert result.real.numpy() == pytest.approx(0.78125)
  # 1/2 mean f^2 = 1/2 mean(1, 4, 0.0625, 9) = 1.7578125.
  assert result.total.numpy() == pytest.approx(0.78125 + 1.7578125)
  # 1/2 mean (f - 1)^2 = 1/2 mean(0, 9, 0.5625, 4) = 1.6953125.
  assert least_squares.generator_loss(
      tf.constant(FAKE[:1]), B).total.numpy() == pytest.approx(1.6953125)


def test_wasserstein_values_by_hand():
  # E d(G(z)) - E d(x) = 0.5625 - 0.375.
  result = wasserstein.discriminator_loss(tf.constant(REAL), tf.constant(FAKE[:1]), B)
  assert result.real.numpy() == pytest.approx(-0.375)
  assert result.total.numpy() == pytest.approx(0.5625 - 0.375)


def test_non_saturating_real_term_is_one_games_half():
  result = non_saturating.discriminator_loss(tf.constant(REAL), tf.constant(FAKE), B)
  real = softplus(-REAL).mean()
  fake = softplus(FAKE).mean(axis=1)
  # The reported real term is 1/2 BCE(D(x), 1) of ONE game.
  assert result.real.numpy() == pytest.approx(0.5 * real, rel=1e-6)
  np.testing.assert_allclose(result.per_generator.numpy(), 0.5 * (real + fake),
                             rtol=1e-6)
  # sum_k 1/2 [BCE(D(x), 1) + BCE(D(G_k(z)), 0)] = K/2 real + 1/2 sum_k fake_k.
  total = 3 * 0.5 * real + 0.5 * fake.sum()
  assert result.total.numpy() == pytest.approx(total, rel=1e-6)
  assert result.fake.numpy() == pytest.approx(0.5 * fake.sum(), rel=1e-5)


def test_non_saturating_discriminator_with_one_generator_is_the_usual_gan_loss():
  result = non_saturating.discriminator_loss(tf.constant(REAL), tf.constant(FAKE[:1]), 4)
  expected = 0.5 * (softplus(-REAL).mean() + softplus(FAKE[0]).mean())
  assert result.total.numpy() == pytest.approx(expected, rel=1e-6)


def test_non_saturating_generator_does_not_saturate():
  # The loss of a generator whose fakes D rejects confidently is large (log(1 + e^10)
  # ~ 10), not close to zero as the saturating log(1 - D) form would be.
  rejected = non_saturating.generator_loss(tf.constant([[-10.0, -10.0]]), 2)
  assert rejected.total.numpy() == pytest.approx(softplus(10.0), rel=1e-6)


@pytest.mark.parametrize("name", FAMILIES)
def test_losses_divide_by_global_batch_and_sum_over_replicas(name):
  """Two replicas with half the batch each sum to the loss of the whole batch."""
  module = MODULES[name]
  halves = [(REAL[:2], FAKE[:, :2]), (REAL[2:], FAKE[:, 2:])]
  d_parts = [module.discriminator_loss(tf.constant(r), tf.constant(f), B)
             for r, f in halves]
  g_parts = [module.generator_loss(tf.constant(f), B) for _, f in halves]
  d_full = module.discriminator_loss(tf.constant(REAL), tf.constant(FAKE), B)
  g_full = module.generator_loss(tf.constant(FAKE), B)
  for field in ("total", "real", "fake"):
    assert sum(getattr(p, field).numpy() for p in d_parts) == pytest.approx(
        getattr(d_full, field).numpy(), rel=1e-6, abs=1e-7), field
  np.testing.assert_allclose(sum(p.per_generator.numpy() for p in g_parts),
                             g_full.per_generator.numpy(), rtol=1e-6, atol=1e-7)
  assert sum(p.total.numpy() for p in g_parts) == pytest.approx(
      g_full.total.numpy(), rel=1e-6, abs=1e-7)
  # Dividing by the local batch instead would double-count.
  local = module.generator_loss(tf.constant(FAKE[:, :2]), 2).total.numpy()
  assert local == pytest.approx(2 * g_parts[0].total.numpy(), rel=1e-6)


# ------------------------------------------------------------------ gradient penalty
def linear_critic(w):
  w = tf.constant(w, tf.float32)
  return lambda x: tf.linalg.matvec(tf.reshape(x, [tf.shape(x)[0], -1]), w)


REAL_2D = np.array([[0.1, 0.2], [-1.0, 0.5], [2.0, 2.0], [0.0, -0.3]], np.float32)
FAKES_2D = np.random.default_rng(0).normal(size=(K, B, 2)).astype(np.float32)
SEED = tf.constant([3, 4], tf.int64)


@pytest.mark.parametrize("w", [(1.0, 0.0), (0.0, -1.0)])
def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic(w):
  penalty = wasserstein.gradient_penalty(linear_critic(w), tf.constant(REAL_2D),
                                         tf.constant(FAKES_2D), SEED, B, weight=10.0)
  assert penalty.numpy() == 0.0


def test_gradient_penalty_is_near_zero_for_an_oblique_unit_critic():
  penalty = wasserstein.gradient_penalty(linear_critic((0.6, 0.8)), tf.constant(REAL_2D),
                                         tf.constant(FAKES_2D), SEED, B, weight=10.0)
  assert abs(penalty.numpy()) < 1e-10


@pytest.mark.parametrize("w,weight", [((2.0, 0.0), 10.0), ((3.0, 4.0), 10.0),
                                      ((0.3, -0.4), 2.5), ((0.0, 0.0), 1.0)])
def test_gradient_penalty_of_a_linear_critic_is_lambda_k_times_norm_gap(w, weight):
  # d(x) = w.x has gradient w everywhere: penalty = lambda K (|w| - 1)^2.
  expected = weight * K * (np.linalg.norm(w) - 1.0) ** 2
  penalty = wasserstein.gradient_penalty(linear_critic(w), tf.constant(REAL_2D),
                                         tf.constant(FAKES_2D), SEED, B, weight=weight)
  assert penalty.numpy() > 0
  assert penalty.numpy() == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_divides_by_global_batch_and_sums_over_replicas():
  critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=-1)  # grad = x
  # real = fakes: every interpolate is the real point, whatever eps.
  points = np.broadcast_to(REAL_2D, (K, B, 2)).copy()
  full = wasserstein.gradient_penalty(critic, tf.constant(REAL_2D), tf.constant(points),
                                      SEED, B, weight=10.0).numpy()
  expected = 10.0 * K * np.mean((np.linalg.norm(REAL_2D, axis=1) - 1.0) ** 2)
  assert full == pytest.approx(expected, rel=1e-5)
  halves = [wasserstein.gradient_penalty(critic, tf.constant(REAL_2D[s]),
                                         tf.constant(points[:, s]), SEED, B,
                                         weight=10.0).numpy()
            for s in (slice(0, 2), slice(2, 4))]
  assert sum(halves) == pytest.approx(full, rel=1e-5)


def test_gradient_penalty_interpolates_between_real_and_fake():
  critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=-1)  # grad = x
  # Real points at the origin, fakes on the unit circle: the interpolate is
  # (1 - eps) fake, its gradient norm 1 - eps, each example's penalty eps^2 in [0, 1].
  angles = np.linspace(0.0, 2.0 * np.pi, K * B, endpoint=False).reshape(K, B)
  fakes = np.stack([np.cos(angles), np.sin(angles)], -1).astype(np.float32)
  zeros = np.zeros([B, 2], np.float32)
  penalty = wasserstein.gradient_penalty(critic, tf.constant(zeros), tf.constant(fakes),
                                         SEED, B, weight=1.0).numpy()
  assert 0.0 < penalty < K
  again = wasserstein.gradient_penalty(critic, tf.constant(zeros), tf.constant(fakes),
                                       SEED, B, weight=1.0).numpy()
  other = wasserstein.gradient_penalty(critic, tf.constant(zeros), tf.constant(fakes),
                                       tf.constant([3, 5], tf.int64), B,
                                       weight=1.0).numpy()
  assert again == penalty  # stateless in its seed
  assert other != penalty


def test_gradient_penalty_of_image_shaped_examples():
  # Examples [2, 3, 1] flattened by the critic: gradient w everywhere.
  w = np.arange(6, dtype=np.float32) / 10.0
  real = np.zeros([B, 2, 3, 1], np.float32)
  fakes = np.ones([K, B, 2, 3, 1], np.float32)
  penalty = wasserstein.gradient_penalty(linear_critic(w), tf.constant(real),
                                         tf.constant(fakes), SEED, B, weight=10.0)
  assert penalty.numpy() == pytest.approx(10.0 * K * (np.linalg.norm(w) - 1.0) ** 2,
                                          rel=1e-5)


def test_registered_wasserstein_penalty_uses_the_configured_lambda():
  family = LOSSES.get("wasserstein")(LossConfig(gradient_penalty=3.0))
  penalty = family.penalty(linear_critic((2.0, 0.0)), tf.constant(REAL_2D),
                           tf.constant(FAKES_2D), SEED, B)
  assert penalty.numpy() == pytest.approx(3.0 * K * 1.0, rel=1e-6)


# ------------------------------------------------------------------ classifier term
def test_classifier_loss_is_cross_entropy_against_generator_index():
  rng = np.random.default_rng(0)
  k, b = 3, 5
  logits = rng.normal(size=(k, b, k)).astype(np.float32)
  got = classifier_loss(tf.constant(logits), b).numpy()
  log_norm = np.log(np.exp(logits.astype(np.float64)).sum(axis=-1))  # [K, B]
  picked = np.stack([logits[i, :, i] for i in range(k)])                # [K, B]
  expected = (log_norm - picked).sum() / b
  assert got == pytest.approx(expected, rel=1e-6)
  # With a global batch twice the local one, the replica's share halves.
  half = classifier_loss(tf.constant(logits), 2 * b).numpy()
  assert half == pytest.approx(expected / 2.0, rel=1e-6)
  # Two replicas with half the examples each sum to the whole batch's loss.
  parts = [classifier_loss(tf.constant(logits[:, s]), b).numpy()
           for s in (slice(0, 2), slice(2, 5))]
  assert sum(parts) == pytest.approx(expected, rel=1e-6)


def test_classifier_loss_by_hand_for_uniform_logits():
  # Uniform logits: -log(1/K) per example, summed over the K games: K log K.
  assert classifier_loss(tf.zeros([4, 6, 4]), 6).numpy() == pytest.approx(
      4 * math.log(4.0), rel=1e-6)


def test_classifier_loss_is_small_when_head_names_the_generator():
  k, b = 4, 3
  confident = np.full((k, b, k), -20.0, np.float32)
  for i in range(k):
    confident[i, :, i] = 20.0
  wrong = np.roll(confident, 1, axis=-1)
  assert classifier_loss(tf.constant(confident), b).numpy() < 1e-6
  # Every example wrong by a margin of 40: loss ~ 40 per generator.
  assert classifier_loss(tf.constant(wrong), b).numpy() == pytest.approx(
      k * 40.0, rel=1e-4)
