"""Tests for tf_stackelberg.metrics.mixture_metrics on samples with known answers."""

import json
import math

import numpy as np
import pytest

from tf_stackelberg.metrics.mixture_metrics import assign_to_modes, format_metrics, mixture_metrics

RING_STD = 0.01
GRID_STD = 0.05


def ring_centers():
  angles = np.arange(8) * np.pi / 4.0
  return np.stack([np.sin(angles), np.cos(angles)], axis=1)


def grid_centers():
  values = (-4.0, -2.0, 0.0, 2.0, 4.0)
  return np.array([(x, y) for x in values for y in values])


def test_balanced_samples_on_centres_cover_everything():
  centers = ring_centers()
  samples = np.repeat(centers, 10, axis=0)
  result = mixture_metrics(samples, centers, RING_STD)
  assert result["num_samples"] == 80
  assert result["num_modes_total"] == 8
  assert result["modes"] == 8
  assert result["high_quality"] == 1.0
  assert result["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
  assert result["mode_histogram"] == [10] * 8
  assert "per_generator" not in result


def test_two_modes_equally_gives_log4():
  centers = ring_centers()
  samples = np.concatenate([np.repeat(centers[[0]], 7, axis=0),
                            np.repeat(centers[[5]], 7, axis=0)])
  result = mixture_metrics(samples, centers, RING_STD)
  assert result["modes"] == 2
  assert result["high_quality"] == 1.0
  assert result["reverse_kl"] == pytest.approx(math.log(4.0))
  expected = [0] * 8
  expected[0] = expected[5] = 7
  assert result["mode_histogram"] == expected


def test_hq_threshold_at_three_std():
  centers = ring_centers()
  radial = centers  # unit vectors pointing away from the ring centre
  inside = centers + radial * 2.9 * RING_STD
  outside = centers + radial * 3.1 * RING_STD
  res_in = mixture_metrics(inside, centers, RING_STD)
  res_out = mixture_metrics(outside, centers, RING_STD)
  assert res_in["high_quality"] == 1.0 and res_in["modes"] == 8
  assert res_out["high_quality"] == 0.0 and res_out["modes"] == 0
  # A custom multiplier moves the boundary accordingly.
  assert mixture_metrics(outside, centers, RING_STD, num_std=3.2)["high_quality"] == 1.0
  # Both sets are still assigned to the right centre.
  idx, dist = assign_to_modes(outside, centers)
  np.testing.assert_array_equal(idx, np.arange(8))
  np.testing.assert_allclose(dist, 3.1 * RING_STD)


def test_half_far_samples_give_half_hq():
  centers = ring_centers()
  near = np.repeat(centers, 5, axis=0)            # 40 HQ samples
  far = np.zeros((40, 2))                         # distance 1 = 100 std
  result = mixture_metrics(np.concatenate([near, far]), centers, RING_STD)
  assert result["num_samples"] == 80
  assert result["high_quality"] == pytest.approx(0.5)
  assert result["modes"] == 8
  # Far samples do not enter the histogram, so it is still uniform.
  assert result["mode_histogram"] == [5] * 8
  assert result["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_unbalanced_histogram_kl_matches_hand_computation():
  centers = ring_centers()
  counts = [6, 2, 0, 0, 0, 0, 0, 0]
  samples = np.repeat(centers, counts, axis=0)
  result = mixture_metrics(samples, centers, RING_STD)
  # q = (3/4, 1/4), M = 8: 3/4 log(6) + 1/4 log(2)
  expected = 0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8)
  assert result["reverse_kl"] == pytest.approx(expected)
  assert result["modes"] == 2
  assert result["mode_histogram"] == counts


def test_no_hq_samples_uses_log_m_convention():
  centers = ring_centers()
  result = mixture_metrics(np.full((10, 2), 5.0), centers, RING_STD)
  assert result["modes"] == 0
  assert result["high_quality"] == 0.0
  assert result["reverse_kl"] == pytest.approx(math.log(8))
  json.dumps(result)  # no inf / nan sneaks into the output


def test_empty_sample_set():
  result = mixture_metrics(np.zeros((0, 2)), ring_centers(), RING_STD,
                           generator_ids=np.zeros((0,), np.int64), num_generators=2)
  assert result["num_samples"] == 0
  assert result["high_quality"] == 0.0
  assert result["reverse_kl"] == pytest.approx(math.log(8))
  assert [row["num_samples"] for row in result["per_generator"]] == [0, 0]


def test_nonfinite_samples_count_but_are_never_hq():
  centers = ring_centers()
  samples = np.concatenate([centers, [[np.nan, 0.0], [np.inf, 1.0]]])
  result = mixture_metrics(samples, centers, RING_STD)
  assert result["num_samples"] == 10
  assert result["high_quality"] == pytest.approx(0.8)
  assert result["modes"] == 8


def test_per_generator_single_mode_each():
  centers = ring_centers()
  ids = np.repeat(np.arange(4), 10)
  samples = centers[(2 * ids) % 8]                # generator g sits on mode 2g
  result = mixture_metrics(samples, centers, RING_STD, generator_ids=ids)
  rows = result["per_generator"]
  assert len(rows) == 4
  for g, row in enumerate(rows):
    assert row["generator"] == g
    assert row["num_samples"] == 10
    assert row["high_quality"] == 1.0
    assert row["dominant_mode"] == 2 * g
    assert row["dominant_share"] == 1.0
    assert row["modes_covered"] == [2 * g]
    assert sum(row["mode_histogram"]) == 10
  assert result["modes"] == 4


def test_per_generator_cover_threshold_and_share_over_all_samples():
  centers = ring_centers()
  # Generator 0: 19 HQ on mode 3, 1 HQ on mode 4 (5% of its HQ samples),
  # and 20 far-away samples. Generator 1: all on mode 6.
  g0 = np.concatenate([np.repeat(centers[[3]], 19, axis=0), centers[[4]], np.zeros((20, 2))])
  g1 = np.repeat(centers[[6]], 10, axis=0)
  samples = np.concatenate([g0, g1])
  ids = np.array([0] * 40 + [1] * 10)
  result = mixture_metrics(samples, centers, RING_STD, generator_ids=ids)
  row0 = result["per_generator"][0]
  assert row0["num_samples"] == 40
  assert row0["high_quality"] == pytest.approx(0.5)
  assert row0["dominant_mode"] == 3
  assert row0["dominant_share"] == pytest.approx(19 / 40)  # over all samples
  assert row0["modes_covered"] == [3, 4]
  strict = mixture_metrics(samples, centers, RING_STD, generator_ids=ids, cover_threshold=0.1)
  assert strict["per_generator"][0]["modes_covered"] == [3]
  assert result["per_generator"][1]["dominant_mode"] == 6


def test_zero_sample_generator_does_not_crash():
  centers = ring_centers()
  ids = np.array([0] * 5 + [2] * 5)
  samples = np.concatenate([np.repeat(centers[[1]], 5, axis=0),
                            np.repeat(centers[[7]], 5, axis=0)])
  result = mixture_metrics(samples, centers, RING_STD, generator_ids=ids, num_generators=4)
  rows = result["per_generator"]
  assert [r["num_samples"] for r in rows] == [5, 0, 5, 0]
  for empty in (rows[1], rows[3]):
    assert empty["high_quality"] == 0.0
    assert empty["dominant_mode"] is None
    assert empty["dominant_share"] == 0.0
    assert empty["modes_covered"] == []
  assert rows[2]["dominant_mode"] == 7
  text = format_metrics(result)
  assert len(text.splitlines()) == 2 + 2 + 4


def test_grid_25_modes_statistics_and_chunking():
  centers = grid_centers()
  rng = np.random.default_rng(0)
  n = 50_000
  mode = rng.integers(0, 25, n)
  samples = centers[mode] + rng.normal(size=(n, 2)) * GRID_STD
  ids = mode % 5
  result = mixture_metrics(samples, centers, GRID_STD, generator_ids=ids)
  assert result["modes"] == 25
  # For a 2-D isotropic Gaussian P(r < 3 std) = 1 - exp(-4.5).
  assert result["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.003)
  assert result["reverse_kl"] < 0.01
  for row in result["per_generator"]:
    # Generator g produced the 5 modes with index = g (mod 5), ~20% each.
    assert sorted(row["modes_covered"]) == [m for m in range(25) if m % 5 == row["generator"]]
    assert row["dominant_mode"] % 5 == row["generator"]
  chunked = mixture_metrics(samples, centers, GRID_STD, generator_ids=ids, chunk_size=777)
  assert chunked == result


def test_result_is_json_serialisable_and_accepts_tensors():
  tf = pytest.importorskip("tensorflow")
  centers = ring_centers()
  samples = np.repeat(centers, 3, axis=0) + 0.001
  ids = np.arange(24) % 3
  expected = mixture_metrics(samples, centers, RING_STD, generator_ids=ids)
  got = mixture_metrics(tf.constant(samples, tf.float32), tf.constant(centers),
                        tf.constant(RING_STD), generator_ids=tf.constant(ids, tf.int32))
  assert got["mode_histogram"] == expected["mode_histogram"]
  assert got["per_generator"] == expected["per_generator"]
  assert json.loads(json.dumps(expected)) == expected


def test_format_metrics_contains_table():
  centers = ring_centers()
  ids = np.array([0, 0, 1, 1])
  samples = centers[[2, 2, 5, 5]]
  text = format_metrics(mixture_metrics(samples, centers, RING_STD, generator_ids=ids))
  lines = text.splitlines()
  assert "modes: 2/8" in lines[0]
  assert "high quality: 100.0%" in lines[0]
  header = lines[2]
  for column in ("generator", "samples", "HQ %", "dominant mode", "share", "modes covered"):
    assert column in header
  assert lines[4].split() == ["0", "2", "100.0", "2", "100.0%", "2"]
  assert lines[5].split() == ["1", "2", "100.0", "5", "100.0%", "5"]
  # Without generator ids there is no table.
  assert len(format_metrics(mixture_metrics(samples, centers, RING_STD)).splitlines()) == 2


@pytest.mark.parametrize("kwargs, name", [
    (dict(samples=np.zeros(5)), "samples"),
    (dict(samples=np.zeros((5, 3))), "samples"),
    (dict(centers=np.zeros((0, 2))), "centers"),
    (dict(centers=np.array([[0.0, np.nan]])), "centers"),
    (dict(std=0.0), "std"),
    (dict(std=-1.0), "std"),
    (dict(std=[0.1, 0.2]), "std"),
    (dict(std=float("inf")), "std"),
    (dict(generator_ids=np.zeros(4, np.int64)), "generator_ids"),
    (dict(generator_ids=-np.ones(8, np.int64)), "generator_ids"),
    (dict(generator_ids=np.full(8, 0.5)), "generator_ids"),
    (dict(generator_ids=np.arange(8), num_generators=3), "num_generators"),
    (dict(num_generators=3), "num_generators"),
    (dict(cover_threshold=1.5), "cover_threshold"),
    (dict(num_std=0.0), "num_std"),
])
def test_input_validation(kwargs, name):
  args = dict(samples=ring_centers(), centers=ring_centers(), std=RING_STD)
  args.update(kwargs)
  with pytest.raises(ValueError, match=name):
    mixture_metrics(**args)
