"""Tests for tf_stackelberg.metrics.image_metrics against direct NumPy/SciPy
computations: the classifier score by its formula, FID against `scipy.linalg.sqrtm`,
KID against an explicit double loop, and known answers (identical sets, shifted
Gaussians, one-hot predictions, uniform and one-class histograms, digit triples)."""

import math

import numpy as np
import pytest
import scipy.linalg
from scipy.special import softmax

from tf_stackelberg.metrics import image_metrics as im


# ------------------------------------------------------------------ classifier score
def reference_score(probs):
  """exp(mean_x sum_y p(y|x) (log p(y|x) - log p(y))), written out per row."""
  marginal = probs.mean(axis=0)
  kls = [sum(p * math.log(p / q) for p, q in zip(row, marginal) if p > 0)
         for row in probs]
  return math.exp(sum(kls) / len(kls))


def test_classifier_score_equals_the_formula_from_logits_and_from_probabilities():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(200, 7)) * 3
  probs = softmax(logits, axis=1)
  expected = reference_score(probs)
  assert im.classifier_score(logits) == pytest.approx(expected, rel=1e-10)
  assert im.classifier_score(probs, from_logits=False) == pytest.approx(expected,
                                                                       rel=1e-10)
  # Unnormalised probabilities are normalised per row.
  assert im.classifier_score(3 * probs, from_logits=False) == pytest.approx(expected,
                                                                           rel=1e-10)
  # Huge logits do not overflow.
  assert im.classifier_score(1e4 * logits) == pytest.approx(
      reference_score(np.eye(7)[np.argmax(logits, axis=1)]), rel=1e-9)


@pytest.mark.parametrize("num_classes", [2, 10])
def test_classifier_score_known_answers(num_classes):
  one_hot = np.eye(num_classes)[np.arange(50 * num_classes) % num_classes]
  # Confident and balanced: the number of classes; with zeros in the probabilities.
  assert im.classifier_score(one_hot, from_logits=False) == pytest.approx(num_classes)
  # Every row the same distribution: 1.
  same = np.tile(np.linspace(1, 2, num_classes), (30, 1))
  assert im.classifier_score(same, from_logits=False) == pytest.approx(1.0)
  # Confident but all one class: 1.
  assert im.classifier_score(np.tile(one_hot[:1], (30, 1)),
                             from_logits=False) == pytest.approx(1.0)


def test_classifier_score_splits_are_the_scores_of_consecutive_parts():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(103, 5)) * 2
  mean, std = im.classifier_score_splits(logits, num_splits=4)
  parts = [reference_score(softmax(logits[i * 25:(i + 1) * 25], axis=1))
           for i in range(4)]
  assert mean == pytest.approx(np.mean(parts), rel=1e-10)
  assert std == pytest.approx(np.std(parts), rel=1e-9)
  assert im.classifier_score_splits(logits, 1) == (pytest.approx(
      im.classifier_score(logits[:103])), 0.0)
  with pytest.raises(ValueError, match="num_splits"):
    im.classifier_score_splits(logits, 0)
  with pytest.raises(ValueError, match=">= 0"):
    im.classifier_score(-np.ones((3, 2)), from_logits=False)


# ------------------------------------------------------------------ FID
def reference_fid(a, b):
  mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
  s1 = np.atleast_2d(np.cov(a, rowvar=False))
  s2 = np.atleast_2d(np.cov(b, rowvar=False))
  root = scipy.linalg.sqrtm(s1 @ s2)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(root)))


@pytest.mark.parametrize("dim,n", [(1, 50), (5, 400), (64, 1000)])
def test_fid_equals_scipy_sqrtm(dim, n):
  rng = np.random.default_rng(dim)
  mixing = rng.normal(size=(dim, dim))
  a = rng.normal(size=(n, dim)) @ mixing
  b = rng.normal(size=(n, dim)) @ (mixing + 0.5 * rng.normal(size=(dim, dim))) + 0.3
  assert im.fid_from_features(a, b) == pytest.approx(reference_fid(a, b), rel=1e-7)


def test_fid_of_identical_sets_is_zero_and_of_shifted_sets_the_squared_shift():
  rng = np.random.default_rng(2)
  a = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
  assert im.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-8)
  shift = rng.normal(size=16)
  assert im.fid_from_features(a, a + shift) == pytest.approx(shift @ shift, rel=1e-8)


def test_frechet_distance_of_gaussians_known_answers():
  mu = np.zeros(3)
  # Isotropic variances s1, s2: D (sqrt(s1) - sqrt(s2))^2.
  assert im.frechet_distance(mu, 4 * np.eye(3), mu, np.eye(3)) == pytest.approx(3.0)
  # Rank-deficient covariances (fewer samples than features) stay finite and exact:
  # point masses at two places are |shift|^2 apart.
  zero = np.zeros((3, 3))
  assert im.frechet_distance(mu, zero, mu + 2, zero) == pytest.approx(12.0)
  rng = np.random.default_rng(3)
  few = rng.normal(size=(5, 40))
  assert im.fid_from_features(few, few) == pytest.approx(0.0, abs=1e-8)
  with pytest.raises(ValueError, match="means must be"):
    im.frechet_distance(mu, np.eye(2), mu, np.eye(3))
  with pytest.raises(ValueError, match="at least 2"):
    im.fid_from_features(few[:1], few)


# ------------------------------------------------------------------ KID
def reference_mmd2(x, y):
  """Unbiased MMD^2 with (x.y/d + 1)^3, summed pair by pair."""
  d, m = x.shape[1], len(x)
  k = lambda u, v: (float(u @ v) / d + 1.0) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
  return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_equals_the_pairwise_sum_on_the_same_subsets():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(40, 6))
  b = rng.normal(size=(50, 6)) * 1.5 + 0.2
  mean, std = im.kid(a, b, num_subsets=3, subset_size=20, seed=7)
  draw = np.random.default_rng(7)
  values = []
  for _ in range(3):
    x = a[draw.choice(40, 20, replace=False)]
    y = b[draw.choice(50, 20, replace=False)]
    values.append(reference_mmd2(x, y))
  assert mean == pytest.approx(np.mean(values), rel=1e-10)
  assert std == pytest.approx(np.std(values), rel=1e-8)
  # Subsets of all rows, whatever their order: the whole-set estimate.
  whole, spread = im.kid(a[:30], b[:30], num_subsets=5, subset_size=1000)
  assert whole == pytest.approx(reference_mmd2(a[:30], b[:30]), rel=1e-10)
  assert spread == 0.0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
  rng = np.random.default_rng(5)
  a, b = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
  same, _ = im.kid(a, b, num_subsets=5, subset_size=300)
  shifted, _ = im.kid(a, b + 1.0, num_subsets=5, subset_size=300)
  assert abs(same) < 0.01
  assert shifted > 0.5
  with pytest.raises(ValueError, match="columns"):
    im.kid(a, b[:, :3])


# ------------------------------------------------------------------ labels
def test_label_histograms_and_coverage():
  labels = np.array([0, 0, 2, 2, 2, 3])
  generators = np.array([1, 1, 0, 1, 0, 0])
  assert im.label_histogram(labels, 5).tolist() == [2, 0, 3, 1, 0]
  assert im.per_generator_label_histogram(labels, generators, 3, 5).tolist() == [
      [0, 0, 2, 1, 0], [2, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
  assert im.label_coverage([2, 0, 3, 1, 0]) == 3
  assert im.label_coverage([2, 0, 3, 1, 0], min_count=2) == 2
  assert im.predicted_labels([[0.1, 2.0], [3.0, -1.0]]).tolist() == [1, 0]
  with pytest.raises(ValueError, match=r"\[0, 3\)"):
    im.label_histogram([0, 3], 3)
  with pytest.raises(ValueError, match="one generator id per label"):
    im.per_generator_label_histogram([0, 1], [0], 2, 2)


def test_kl_to_uniform_known_answers():
  assert im.kl_to_uniform([5, 5, 5, 5]) == 0.0
  assert im.kl_to_uniform([7, 0, 0, 0]) == pytest.approx(math.log(4))
  assert im.kl_to_uniform([0, 0, 0]) == pytest.approx(math.log(3))  # empty
  counts = np.array([1, 2, 3, 0])
  q = counts / counts.sum()
  expected = sum(p * math.log(p * 4) for p in q if p > 0)
  assert im.kl_to_uniform(counts) == pytest.approx(expected)


# ------------------------------------------------------------------ Stacked-MNIST
def test_stacked_mnist_modes_of_constructed_triples():
  digits = np.array([[0, 0, 0], [1, 2, 3], [9, 9, 9], [1, 2, 3], [3, 2, 1]])
  assert im.stacked_mnist_modes(digits).tolist() == [0, 123, 999, 123, 321]
  result = im.stacked_mnist_metrics(digits)
  assert result["modes"] == 4
  assert result["num_samples"] == 5
  histogram = np.zeros(1000)
  histogram[[0, 123, 999, 321]] = [1, 2, 1, 1]
  assert result["mode_histogram"] == histogram.astype(int).tolist()
  q = histogram[histogram > 0] / 5
  assert result["mode_kl"] == pytest.approx(float(np.sum(q * np.log(1000 * q))))
  with pytest.raises(ValueError, match=r"\[N, 3\]"):
    im.stacked_mnist_modes(np.zeros((2, 2), int))
  with pytest.raises(ValueError, match=r"\[0, 10\)"):
    im.stacked_mnist_modes([[0, 10, 1]])


def test_stacked_mnist_all_modes_once_is_uniform():
  triples = np.array([[a, b, c] for a in range(10) for b in range(10) for c in range(10)])
  result = im.stacked_mnist_metrics(np.concatenate([triples, triples]))
  assert result["modes"] == 1000
  assert result["mode_kl"] == 0.0
  one = im.stacked_mnist_metrics(np.tile([[4, 5, 6]], (10, 1)))
  assert one["modes"] == 1
  assert one["mode_kl"] == pytest.approx(math.log(1000))


def test_stacked_mnist_kl_splits_into_channel_kls_and_dependence():
  # Every digit equally often in every channel, but the three channels always equal:
  # the channel KLs are 0 and all of the KL (log 100: 10 of 1000 modes, evenly) is
  # dependence between the channels.
  same = im.stacked_mnist_metrics(np.repeat(np.arange(10), 3).reshape(10, 3))
  assert same["channel_kl"] == pytest.approx([0.0, 0.0, 0.0])
  assert same["channel_dependence"] == pytest.approx(math.log(100))
  assert same["mode_kl"] == pytest.approx(math.log(100))
  # Independent channels (every triple of the digits {0, 1} of channel 0 and all
  # digits of the others): no dependence, and channel 0's KL is log 5.
  product = np.array([[a, b, c] for a in (0, 1) for b in range(10) for c in range(10)])
  independent = im.stacked_mnist_metrics(product)
  assert independent["channel_dependence"] == pytest.approx(0.0, abs=1e-12)
  assert independent["channel_kl"] == pytest.approx([math.log(5), 0.0, 0.0])
  # The split is exact for any histogram.
  rng = np.random.default_rng(0)
  skewed = im.stacked_mnist_metrics(rng.integers(0, [3, 10, 7], size=(500, 3)))
  assert skewed["mode_kl"] == pytest.approx(
      sum(skewed["channel_kl"]) + skewed["channel_dependence"], rel=1e-9)
  assert skewed["channel_dependence"] > 0
  empty = im.stacked_mnist_metrics(np.zeros((0, 3), int))
  assert empty["channel_dependence"] == 0.0
