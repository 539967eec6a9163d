"""Tests for tf_stackelberg.data: mixture specs, stateless point draws, the
step-indexed training pipelines (fixed set, reshuffled set, streaming) and the
registered datasets as `DataSource`s.

Statistical checks use tolerances of 5 standard errors of the sample size; all draws are
seeded, so each check is deterministic.
"""

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.config.sections import DataConfig
from tf_stackelberg.data.mixtures import (MixtureData, draw_points, fixed_set, grid,
                                          make_dataset, ring)
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.data.source import DataSource

NUM_SE = 5.0


def batches(dataset):
  return np.stack([b.numpy() for b in dataset])


def seed(a, b=0):
  return tf.constant([a, b], tf.int64)


def sorted_rows(points):
  points = np.asarray(points)
  return points[np.lexsort(points.T[::-1])]


# ------------------------------------------------------------------ specs
def test_ring_has_eight_unit_modes_at_multiples_of_45_degrees():
  spec = ring()
  assert spec.name == "ring"
  assert spec.centers.shape == (8, 2) and spec.centers.dtype == np.float32
  assert spec.std == pytest.approx(0.01)
  angles = np.arange(8) * math.pi / 4.0
  expected = np.stack([np.sin(angles), np.cos(angles)], axis=1)
  np.testing.assert_allclose(spec.centers, expected, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(spec.centers, axis=1), 1.0, atol=1e-6)


def test_ring_parameters():
  spec = ring(num_modes=6, radius=2.5, std=0.2)
  assert spec.centers.shape == (6, 2)
  np.testing.assert_allclose(np.linalg.norm(spec.centers, axis=1), 2.5, atol=1e-5)
  # Neighbouring modes are 2 r sin(pi / M) apart.
  gaps = np.linalg.norm(spec.centers - np.roll(spec.centers, 1, axis=0), axis=1)
  np.testing.assert_allclose(gaps, 2 * 2.5 * math.sin(math.pi / 6), atol=1e-5)
  assert spec.std == pytest.approx(0.2)


def test_grid_has_25_modes_on_even_coordinates():
  spec = grid()
  assert spec.name == "grid"
  assert spec.centers.shape == (25, 2)
  assert spec.std == pytest.approx(0.05)
  values = (-4.0, -2.0, 0.0, 2.0, 4.0)
  expected = np.array(list(itertools.product(values, values)))
  np.testing.assert_array_equal(sorted_rows(spec.centers), sorted_rows(expected))


def test_registered_datasets_build_their_spec_from_the_config():
  ring_data = DATASETS.get("ring")(DataConfig(dataset="ring", ring_modes=4,
                                              ring_std=0.3, ring_radius=2.0))
  ring_spec = ring_data.spec
  assert ring_spec.name == "ring" and len(ring_spec.centers) == 4
  assert ring_spec.std == pytest.approx(0.3)
  np.testing.assert_allclose(np.linalg.norm(ring_spec.centers, axis=1), 2.0, atol=1e-6)
  grid_data = DATASETS.get("grid")(DataConfig(dataset="grid", grid_size=3,
                                              grid_spacing=1.0, grid_std=0.1))
  grid_spec = grid_data.spec
  assert grid_spec.name == "grid" and grid_spec.std == pytest.approx(0.1)
  np.testing.assert_array_equal(np.unique(grid_spec.centers), [-1.0, 0.0, 1.0])
  for data in (ring_data, grid_data):
    assert isinstance(data, MixtureData) and isinstance(data, DataSource)
    assert data.element_shape == (2,)
    assert data.evaluators == ("mixture", "scatter")


def test_default_ring_dataset_is_the_reference_one():
  data = DATASETS.get("ring")(DataConfig())
  np.testing.assert_array_equal(data.spec.centers, ring().centers)
  assert data.spec.std == ring().std
  assert data.size == 8000 and data.shuffle is False


# ------------------------------------------------------------------ draws
def test_draw_points_is_deterministic_in_its_seed():
  spec = ring()
  p1, m1 = draw_points(spec, 500, seed(7))
  p2, m2 = draw_points(spec, 500, seed(7))
  p3, m3 = draw_points(spec, 500, seed(8))
  assert p1.shape == (500, 2) and p1.dtype == tf.float32
  assert m1.shape == (500,) and m1.dtype == tf.int32
  np.testing.assert_array_equal(p1.numpy(), p2.numpy())
  np.testing.assert_array_equal(m1.numpy(), m2.numpy())
  assert not np.array_equal(m1.numpy(), m3.numpy())
  assert np.abs(p1.numpy() - p3.numpy()).max() > 0.1


@pytest.mark.parametrize("spec,num_points", [(ring(), 40000), (grid(), 50000)])
def test_draw_points_moments_per_mode(spec, num_points):
  points, modes = draw_points(spec, num_points, seed(11, 3))
  points, modes = points.numpy().astype(np.float64), modes.numpy()
  num_modes = len(spec.centers)
  assert modes.min() == 0 and modes.max() == num_modes - 1
  # Mode frequencies: binomial with p = 1 / M.
  p = 1.0 / num_modes
  counts = np.bincount(modes, minlength=num_modes)
  assert np.all(np.abs(counts - num_points * p)
                <= NUM_SE * math.sqrt(num_points * p * (1 - p)))
  # Every point stays near its own mode centre (6 std in 2-D: P ~ e^-18 per point).
  offsets = points - spec.centers[modes]
  assert np.linalg.norm(offsets, axis=1).max() < 6 * spec.std
  for k in range(num_modes):
    sample = offsets[modes == k]
    n = len(sample)
    mean_se = spec.std / math.sqrt(n)
    std_se = spec.std / math.sqrt(2 * (n - 1))
    assert np.all(np.abs(sample.mean(axis=0)) <= NUM_SE * mean_se), k
    assert np.all(np.abs(sample.std(axis=0, ddof=1) - spec.std) <= NUM_SE * std_se), k
  # The two coordinates are independent: correlation within 5 / sqrt(N).
  corr = np.corrcoef(offsets.T)[0, 1]
  assert abs(corr) <= NUM_SE / math.sqrt(num_points)


def test_fixed_set_depends_on_seed_only():
  spec = ring()
  a = fixed_set(spec, 100, seed=3).numpy()
  assert a.shape == (100, 2)
  np.testing.assert_array_equal(a, fixed_set(spec, 100, seed=3).numpy())
  assert not np.allclose(a, fixed_set(spec, 100, seed=4).numpy())


# ------------------------------------------------------------------ fixed-set pipeline
def test_fixed_mode_repeats_the_8000_point_set_every_epoch():
  spec = ring()
  data = batches(make_dataset(spec, 64, seed=5, num_steps=250))  # two epochs
  assert data.shape == (250, 64, 2) and data.dtype == np.float32
  epoch0, epoch1 = data[:125].reshape(-1, 2), data[125:].reshape(-1, 2)
  points = fixed_set(spec, 8000, 5).numpy()
  assert len(np.unique(points, axis=0)) == 8000
  np.testing.assert_array_equal(epoch0, points)  # fixed order (the reference's)
  np.testing.assert_array_equal(epoch1, epoch0)


def test_fixed_mode_drops_the_incomplete_last_batch():
  spec = grid()
  data = batches(make_dataset(spec, 32, seed=1, dataset_size=100, num_steps=6))
  points = fixed_set(spec, 100, 1).numpy()
  # 3 full batches per epoch; points 96..99 never appear.
  np.testing.assert_array_equal(data[:3].reshape(-1, 2), points[:96])
  np.testing.assert_array_equal(data[3:], data[:3])


def test_default_is_repeated_forever():
  spec = ring()
  dataset = make_dataset(spec, 64, seed=0, dataset_size=128)
  data = batches(dataset.take(7))
  assert data.shape == (7, 64, 2)
  np.testing.assert_array_equal(data[0], data[2])
  np.testing.assert_array_equal(data[1], data[5])
  assert not np.array_equal(data[0], data[1])


@pytest.mark.parametrize("dataset_size,shuffle", [(256, False), (256, True), (0, False)])
@pytest.mark.parametrize("start_step", [1, 5, 9])
def test_start_step_resumes_exactly(dataset_size, shuffle, start_step):
  """A pipeline started at step s yields what an uninterrupted one yields from s."""
  spec = ring()
  full = batches(make_dataset(spec, 64, seed=2, dataset_size=dataset_size,
                              shuffle=shuffle, num_steps=12))
  resumed = batches(make_dataset(spec, 64, seed=2, dataset_size=dataset_size,
                                 shuffle=shuffle, start_step=start_step,
                                 num_steps=12 - start_step))
  np.testing.assert_array_equal(resumed, full[start_step:])


# ------------------------------------------------------------------ shuffling
def test_shuffle_mode_is_a_new_permutation_every_epoch():
  spec = ring()
  size, batch = 256, 64
  data = batches(make_dataset(spec, batch, seed=4, dataset_size=size, shuffle=True,
                              num_steps=3 * size // batch))
  points = fixed_set(spec, size, 4).numpy()
  epochs = data.reshape(3, size, 2)
  for epoch in epochs:
    np.testing.assert_array_equal(sorted_rows(epoch), sorted_rows(points))
    assert not np.array_equal(epoch, points)  # not the fixed order
  assert not np.array_equal(epochs[0], epochs[1])
  assert not np.array_equal(epochs[1], epochs[2])
  # Another seed shuffles differently (and draws a different set).
  other = batches(make_dataset(spec, batch, seed=5, dataset_size=size, shuffle=True,
                               num_steps=1))
  assert not np.array_equal(other[0], data[0])


# ------------------------------------------------------------------ streaming
def test_streaming_mode_draws_fresh_points_every_step():
  spec = ring()
  data = batches(make_dataset(spec, 64, seed=3, dataset_size=0, num_steps=20))
  assert data.shape == (20, 64, 2)
  flat = data.reshape(-1, 2)
  assert len(np.unique(flat, axis=0)) == len(flat)  # no point is ever repeated
  # The points follow the mixture.
  dist = np.linalg.norm(flat[:, None, :] - spec.centers[None], axis=-1).min(axis=1)
  assert dist.max() < 6 * spec.std
  # Deterministic in the seed, different across seeds.
  again = batches(make_dataset(spec, 64, seed=3, dataset_size=0, num_steps=20))
  np.testing.assert_array_equal(again, data)
  other = batches(make_dataset(spec, 64, seed=4, dataset_size=0, num_steps=20))
  assert not np.isin(other.reshape(-1, 2)[:, 0], flat[:, 0]).any()


# ------------------------------------------------------------------ DataSource
@pytest.mark.parametrize("size,shuffle", [(256, False), (256, True), (0, False)])
def test_mixture_data_batches_are_the_pipeline_of_its_settings(size, shuffle):
  data = DATASETS.get("ring")(DataConfig(size=size, shuffle=shuffle))
  got = batches(data.batches(64, seed=2, start_step=3, num_steps=6))
  expected = batches(make_dataset(ring(), 64, seed=2, dataset_size=size,
                                  shuffle=shuffle, start_step=3, num_steps=6))
  assert got.shape == (6, 64, 2)
  np.testing.assert_array_equal(got, expected)


def test_mixture_data_held_out_is_stateless_and_outside_the_training_set():
  data = MixtureData(ring(), size=512)
  a = data.held_out(300, seed(1, 9)).numpy()
  assert a.shape == (300, 2) and a.dtype == np.float32
  np.testing.assert_array_equal(a, data.held_out(300, seed(1, 9)).numpy())
  assert not np.allclose(a, data.held_out(300, seed(1, 10)).numpy())
  training = fixed_set(ring(), 512, 1).numpy()
  assert not np.isin(a[:, 0], training[:, 0]).any()
  # The held-out points follow the mixture.
  dist = np.linalg.norm(a[:, None, :] - ring().centers[None], axis=-1).min(axis=1)
  assert dist.max() < 6 * ring().std
