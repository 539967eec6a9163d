"""Tests for the metrics that see what latent MCMC changes (docs/design.md section
14.2): improved precision and recall, density and coverage
(tf_stackelberg.metrics.manifold_metrics) against a brute-force NumPy reference and on
known cases; the bootstrap of FID and KID (tf_stackelberg.metrics.image_metrics)
against explicit resampling and against the spread of independent draws; and the
classifier evaluator reporting them on a tiny setup.

The reference and exact-value tests use integer-valued features: every squared
distance is then an exact integer in float64, whichever way it is summed, so ties
and duplicates (many, with small integer ranges) must be resolved by the documented
conventions and results must agree exactly."""

import numpy as np
import pytest

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.metrics import image_metrics as im
from tf_stackelberg.metrics import manifold_metrics as mm


# ------------------------------------------------------------------ brute force
def brute_radius(points, i, k):
  """The k-th nearest neighbour distance of points[i] among the other points."""
  distances = sorted(float(np.sqrt(np.sum((points[i] - points[j]) ** 2)))
                     for j in range(len(points)) if j != i)
  return distances[k - 1]


def brute_metrics(real, fake, kp, kd):
  """The four metrics by their definitions, with explicit loops."""
  def dist(x, y):
    return float(np.sqrt(np.sum((x - y) ** 2)))
  real_p = [brute_radius(real, i, kp) for i in range(len(real))]
  real_d = [brute_radius(real, i, kd) for i in range(len(real))]
  fake_p = [brute_radius(fake, j, kp) for j in range(len(fake))]
  precision = np.mean([any(dist(y, x) <= r for x, r in zip(real, real_p))
                       for y in fake])
  recall = np.mean([any(dist(x, y) <= r for y, r in zip(fake, fake_p))
                    for x in real])
  density = sum(dist(y, x) < r for y in fake for x, r in zip(real, real_d)) / (
      kd * len(fake))
  coverage = np.mean([any(dist(y, x) < r for y in fake) for x, r in zip(real, real_d)])
  return {"precision": precision, "recall": recall, "density": density,
          "coverage": coverage}


def integer_features(rng, n, dim, top):
  return rng.integers(0, top, (n, dim)).astype(np.float64)


@pytest.mark.parametrize("top, dim", [(4, 3), (50, 2), (10 ** 5, 5)])
def test_the_four_metrics_equal_the_brute_force_definitions(top, dim):
  # top=4: many duplicates and ties; 10^5: almost none.
  rng = np.random.default_rng(top)
  real = integer_features(rng, 60, dim, top)
  fake = integer_features(rng, 45, dim, top) + (top // 10)
  got = mm.manifold_metrics(real, fake, chunk_rows=7)
  expected = brute_metrics(real, fake, 3, 5)
  assert got == pytest.approx(expected, abs=1e-12)
  assert mm.precision_recall(real, fake) == pytest.approx(
      (expected["precision"], expected["recall"]), abs=1e-12)
  assert mm.density_coverage(real, fake) == pytest.approx(
      (expected["density"], expected["coverage"]), abs=1e-12)
  # The radii themselves: a point is its own 0-th neighbour.
  radii = mm.knn_radii(real, (1, 3, 5), chunk_rows=11)
  for i in (0, 17, 59):
    assert radii[i].tolist() == [brute_radius(real, i, k) for k in (1, 3, 5)]


def test_chunked_and_unchunked_give_the_same_numbers():
  rng = np.random.default_rng(1)
  real = rng.normal(size=(300, 16)).astype(np.float32)
  fake = (rng.normal(size=(250, 16)) * 1.2 + 0.3).astype(np.float32)
  whole = mm.manifold_metrics(real, fake)  # one block: 64 MB hold them all
  for rows in (1, 13, 250, 1000):
    assert mm.manifold_metrics(real, fake, chunk_rows=rows) == whole
  # The radii agree to round-off (BLAS may sum a block's dot products in another
  # order), which could change a metric only at an exact tie.
  np.testing.assert_allclose(mm.knn_radii(real, (3, 5), chunk_rows=7),
                             mm.knn_radii(real, (3, 5)), rtol=1e-14)
  # Precomputed real radii give the same answer.
  radii = mm.knn_radii(real, (3, 5), squared=True)
  assert mm.manifold_metrics(real, fake, real_radii=radii) == whole
  np.testing.assert_allclose(mm.squared_distances(real[:5], fake[:4]),
                             ((real[:5, None].astype(np.float64) - fake[None, :4]) ** 2
                              ).sum(-1), rtol=1e-10, atol=1e-10)


def test_identical_sets():
  """A set against itself, without tied distances: precision = recall = coverage =
  1 (each point lies in its own ball, at distance 0) and density exactly 1 for k = 5:
  fake copy j lies in its own open ball and in the balls of the points that have it
  among their 4 nearest neighbours (the 5th lies on the sphere, outside), so the count
  is N (1 + 4) / (5 N). With closed balls it would be 6/5."""
  rng = np.random.default_rng(2)
  real = integer_features(rng, 200, 4, 10 ** 6)
  distances = mm.squared_distances(real, real)[np.triu_indices(200, 1)]
  assert len(np.unique(distances)) == len(distances)  # no ties
  assert mm.manifold_metrics(real, real.copy()) == {
      "precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_disjoint_well_separated_sets_give_zeros():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(100, 8))
  fake = rng.normal(size=(80, 8)) + 100.0
  assert mm.manifold_metrics(real, fake) == {
      "precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_one_distribution_and_two_failures_it_separates():
  rng = np.random.default_rng(4)
  real, fake = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
  m = mm.manifold_metrics(real, fake)
  # Naeem et al.: for one distribution E[density] = 1 and, for large sets, E[coverage]
  # = 1 - (1/2)^k (0.969 for k = 5). Tolerances: several standard errors of 2,000
  # draws (their measured spread over seeds is about 0.02 and 0.005).
  assert m["density"] == pytest.approx(1.0, abs=0.08)
  assert m["coverage"] == pytest.approx(1 - 0.5 ** 5, abs=0.02)
  assert m["precision"] > 0.9 and m["recall"] > 0.9
  # Fakes that keep only the centre of the real law: faithful (precision stays
  # high) but not diverse (recall and coverage collapse). FID alone would not say
  # which of the two is lost.
  narrow = mm.manifold_metrics(real, fake * 0.25)
  assert narrow["precision"] > 0.9 and narrow["density"] > 0.8
  assert narrow["recall"] < 0.2 and narrow["coverage"] < 0.25
  # Half the fakes far off: precision and density count only the faithful half,
  # recall and coverage barely move.
  half = np.concatenate([fake[:1000], fake[1000:] + 50.0])
  off = mm.manifold_metrics(real, half)
  assert off["precision"] == pytest.approx(m["precision"] / 2, abs=0.03)
  assert off["density"] == pytest.approx(m["density"] / 2, abs=0.05)
  assert off["recall"] > 0.85 and off["coverage"] > 0.85


def test_bad_inputs_are_refused():
  x = np.zeros((5, 2))
  with pytest.raises(ValueError, match="at least 6 rows; got 5"):
    mm.manifold_metrics(x, np.ones((10, 2)))
  with pytest.raises(ValueError, match="3 columns, expected 2"):
    mm.manifold_metrics(np.ones((10, 2)), np.ones((10, 3)))
  with pytest.raises(ValueError, match="`precision_k` must be a positive integer"):
    mm.manifold_metrics(np.ones((10, 2)), np.ones((10, 2)), precision_k=0)
  with pytest.raises(ValueError, match="shape \\[10, 2\\]"):
    mm.manifold_metrics(np.ones((10, 2)), np.ones((10, 2)), real_radii=np.ones(10))


# ------------------------------------------------------------------ bootstrap
@pytest.mark.parametrize("dim", [3, 60])
def test_fid_bootstrap_equals_explicit_resampling(dim):
  # dim 60: fewer distinct rows drawn than features, the n x n form of the trace.
  rng = np.random.default_rng(5)
  a, b = rng.normal(size=(40, dim)), rng.normal(size=(50, dim)) + 0.5
  for resample_b in (False, True):
    got = im.fid_bootstrap(a, b, num_resamples=6, seed=9, resample_b=resample_b)
    draws = np.random.default_rng(9)
    for value in got:
      rows_a = np.repeat(np.arange(40), draws.multinomial(40, np.full(40, 1 / 40)))
      rows_b = (np.repeat(np.arange(50), draws.multinomial(50, np.full(50, 1 / 50)))
                if resample_b else np.arange(50))
      # The reference's square roots of a rank-deficient covariance turn round-off
      # eigenvalues (about 1e-16 of the largest) into terms of about 1e-8: rel 1e-6.
      assert value == pytest.approx(im.fid_from_features(a[rows_a], b[rows_b]),
                                    rel=1e-6)


def brute_kid_of_resample(a, b, rows_a, rows_b, counts_a, counts_b):
  """The MMD^2 of one subset of a resample by an explicit double loop over the
  copies of the subset's rows, pairs of two copies of one row left out."""
  x = [(i, a[i]) for i in rows_a for _ in range(counts_a[i])]
  y = [(j, b[j]) for j in rows_b for _ in range(counts_b[j])]
  def kernel(u, v):
    return (u @ v / a.shape[1] + 1.0) ** 3
  def within(copies):
    values = [kernel(u, v) for i, u in copies for j, v in copies if i != j]
    return sum(values) / len(values)
  across = np.mean([kernel(u, v) for _, u in x for _, v in y])
  return within(x) + within(y) - 2 * across


@pytest.mark.parametrize("resample_b", [True, False])
def test_kid_bootstrap_keeps_kid_and_equals_explicit_resampling(resample_b):
  rng = np.random.default_rng(6)
  a, b = rng.normal(size=(30, 4)), rng.normal(size=(25, 4)) + 0.3
  mean, std, resampled = im.kid_bootstrap(a, b, num_subsets=3, subset_size=12, seed=2,
                                          num_resamples=4, resample_seed=8,
                                          resample_b=resample_b)
  assert (mean, std) == im.kid(a, b, num_subsets=3, subset_size=12, seed=2)
  # The same subsets and counts, drawn again.
  subsets = np.random.default_rng(2)
  rows = [(subsets.choice(30, 12, replace=False), subsets.choice(25, 12, replace=False))
          for _ in range(3)]
  draws = np.random.default_rng(8)
  for value in resampled:
    counts_a = draws.multinomial(30, np.full(30, 1 / 30))
    counts_b = (draws.multinomial(25, np.full(25, 1 / 25)) if resample_b
                else np.ones(25, int))
    per_subset = [brute_kid_of_resample(a, b, ra, rb, counts_a, counts_b)
                  for ra, rb in rows]
    assert value == pytest.approx(np.mean(per_subset), rel=1e-9, abs=1e-12)


def test_bootstrap_intervals_hold_the_estimate_match_the_spread_and_shrink():
  """The bootstrap standard error of FID and KID against the standard deviation of
  the estimate over 30 independent fake sets (a fixed real set, as in the
  evaluator), and its 1/sqrt(n) shrinking. The bootstrap se of 40 resamples has a
  relative error of about 1/sqrt(80) = 11%, the spread of 30 draws about 13%: their
  ratio is within a factor 1.6 (about 2.8 standard errors of its log). KID takes one
  subset of n rows (all the fakes), whose variance falls as 1/n."""
  rng = np.random.default_rng(7)

  def fake(n):
    return rng.normal(size=(n, 4)) * 1.3 + 0.4

  real = rng.normal(size=(2000, 4))
  ses = {}
  for n in (200, 800):
    fids, kids = [], []
    for _ in range(30):
      f = fake(n)
      fids.append(im.fid_from_features(f, real))
      kids.append(im.kid(f, real, num_subsets=1, subset_size=n)[0])
    f = fake(n)
    fid = im.fid_from_features(f, real)
    fid_ci = im.bootstrap_interval(fid, im.fid_bootstrap(f, real, 40, seed=1), 0.95,
                                   floor=0.0)
    kid, _, kid_resampled = im.kid_bootstrap(f, real, 1, n, num_resamples=40)
    kid_ci = im.bootstrap_interval(kid, kid_resampled)
    assert fid_ci["low"] < fid < fid_ci["high"] and kid_ci["low"] < kid < kid_ci["high"]
    assert fid_ci["high"] - fid == pytest.approx(1.959964 * fid_ci["se"], rel=1e-5)
    assert 1 / 1.6 < fid_ci["se"] / np.std(fids, ddof=1) < 1.6
    assert 1 / 1.6 < kid_ci["se"] / np.std(kids, ddof=1) < 1.6
    ses[n] = fid_ci["se"], kid_ci["se"]
  # Four times the samples: half the width for FID (within its ratio's ~16% error,
  # about 2 standard errors). KID's unbiased MMD^2 adds a term of variance 1/n^2 to
  # the 1/n one, large at a few hundred rows: its width falls by between 1/4 and 1/2.
  (fid_200, kid_200), (fid_800, kid_800) = ses[200], ses[800]
  assert fid_800 / fid_200 == pytest.approx(0.5, rel=0.35)
  assert 0.25 / 1.35 < kid_800 / kid_200 < 0.5 * 1.35


def test_bootstrap_interval_edge_cases():
  assert im.bootstrap_interval(1.0, [np.nan, 2.0]) == {"se": None, "low": None,
                                                       "high": None}
  interval = im.bootstrap_interval(0.1, [0.0, 2.0], floor=0.0)
  assert interval["low"] == 0.0 and interval["se"] == pytest.approx(np.sqrt(2))
  with pytest.raises(ValueError, match="at least 2 resamples"):
    im.fid_bootstrap(np.ones((5, 2)), np.ones((5, 2)), num_resamples=1)


# ------------------------------------------------------------------ the evaluator
def tiny_evaluator(**settings):
  """The feature evaluator over a fixed random linear network of 6x6 images."""
  import keras  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.evaluation.evaluators.classifier import FeatureEvaluator  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.evaluation.networks import FeatureNetwork  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(0)
  inputs = keras.Input((6, 6, 1))
  features = keras.layers.Dense(5)(keras.layers.Flatten()(inputs))
  logits = keras.layers.Dense(3)(features)
  network = FeatureNetwork("tiny", keras.Model(inputs, [logits, features]),
                           batch_size=100)
  real = np.random.default_rng(0).uniform(-1, 1, (300, 6, 6, 1)).astype(np.float32)
  evaluator = FeatureEvaluator(network, real, 2, num_samples=200,
                               class_names=("a", "b", "c"), kid_subsets=5,
                               kid_subset_size=100, **settings)
  return evaluator, network, real


def test_the_classifier_evaluator_reports_the_new_metrics():
  from tf_stackelberg.evaluation import evaluator as evaluation  # pylint: disable=import-outside-toplevel
  evaluator, network, real = tiny_evaluator(manifold_samples=150, bootstrap=10)
  rng = np.random.default_rng(1)
  x = np.clip(rng.uniform(-1, 1, (200, 6, 6, 1)) * 0.5, -1, 1).astype(np.float32)
  k = rng.integers(0, 2, 200)
  results = dict(evaluator.evaluate_samples(x, k))
  assert evaluator.scalar_names[-8:] == (
      "precision", "recall", "density", "coverage", "fid_ci_low", "fid_ci_high",
      "kid_ci_low", "kid_ci_high")
  assert set(evaluation.scalars([evaluator], {"classifier": results})) == set(
      evaluator.scalar_names)
  assert "label_kl" in evaluator.scalar_names
  # The manifold metrics: the fixed subsets of both feature sets.
  fake_features = network(x)[1].numpy()
  real_features = evaluator.real_statistics()[0]
  pick = lambda n: np.sort(np.random.default_rng(0).choice(n, 150, replace=False))  # pylint: disable=unnecessary-lambda-assignment
  expected = mm.manifold_metrics(real_features[pick(300)], fake_features[pick(200)])
  for name, value in expected.items():
    assert results[name] == pytest.approx(value, abs=1e-12)
  assert results["manifold"] == {"num_samples": 150, "num_real": 150,
                                 "precision_k": 3, "density_k": 5}
  # The intervals hold the unchanged FID and KID.
  assert results["fid"] == pytest.approx(im.fid_from_features(fake_features,
                                                              real_features), rel=1e-6)
  assert (results["kid"], results["kid_std"]) == pytest.approx(
      im.kid(fake_features, real_features, 5, 100), rel=1e-6)
  for name in ("fid", "kid"):
    assert results[f"{name}_ci_low"] < results[name] < results[f"{name}_ci_high"]
  text = evaluator.format(results)
  assert "FID: " in text and "(95% CI " in text and "precision " in text
  assert evaluator.summary_fields(results)[-1].startswith("P/R ")
  # Without a bootstrap: no intervals, and the same FID and KID.
  plain, _, _ = tiny_evaluator(bootstrap=0)
  plain_results = dict(plain.evaluate_samples(x, k))
  assert "fid_ci_low" not in plain.scalar_names and "fid_ci_low" not in plain_results
  assert (plain_results["fid"], plain_results["kid"]) == (results["fid"],
                                                          results["kid"])
  with pytest.raises(ConfigError, match="0 or at least 2 resamples"):
    tiny_evaluator(bootstrap=1)


def test_too_few_samples_give_no_manifold_metrics():
  evaluator, _, _ = tiny_evaluator()
  x = np.zeros((3, 6, 6, 1), np.float32)
  results = dict(evaluator.evaluate_samples(x, np.zeros(3, int)))
  assert [results[name] for name in ("precision", "recall", "density", "coverage")
          ] == [None] * 4
  assert "too few" in evaluator.format(results)


def test_the_flags_refuse_a_single_resample_and_a_negative_subset():
  from tf_stackelberg.config.sections import Config  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConfigError, match=r"^--eval.bootstrap=1 gives no spread"):
    Config().replace(**{"eval.bootstrap": 1}).validate()
  with pytest.raises(ConfigError, match=r"^--eval.manifold_samples must be >= 0"):
    Config().replace(**{"eval.manifold_samples": -1}).validate()
  Config().replace(**{"eval.bootstrap": 0, "eval.manifold_samples": 0}).validate()
