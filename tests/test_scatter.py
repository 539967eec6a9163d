"""Tests for the numpy scatter renderer and its PNG / summary helpers."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.visualization import (
    PALETTE,
    generator_color,
    image_summary_tensor,
    render_scatter,
    save_png,
    side_by_side,
)
from tf_stackelberg.visualization import scatter

SIZE = 101
EXTENT = (-1.0, 1.0, -1.0, 1.0)


def pixel_of(x, y, extent=EXTENT, size=SIZE):
  """Expected (row, col) of a data point, matching the renderer's mapping."""
  xmin, xmax, ymin, ymax = extent
  col = round((x - xmin) / (xmax - xmin) * (size - 1))
  row = round((ymax - y) / (ymax - ymin) * (size - 1))
  return row, col


def color_mask(image, color):
  return np.all(image == np.asarray(color, np.uint8), axis=-1)


def test_output_shape_dtype_and_background():
  image = render_scatter(np.zeros((3, 2)), np.ones((3, 2)) * 0.5, size=64)
  assert image.shape == (64, 64, 3)
  assert image.dtype == np.uint8
  np.testing.assert_array_equal(image[0, 0], scatter.BACKGROUND)


def test_axis_lines_through_origin():
  image = render_scatter(None, None, extent=EXTENT, size=SIZE)
  row, col = pixel_of(0.0, 0.0)
  assert color_mask(image, scatter.AXIS_COLOR)[:, col].all()
  assert color_mask(image, scatter.AXIS_COLOR)[row, :].all()
  # Nothing but background and the two axis lines.
  assert np.count_nonzero(~color_mask(image, scatter.BACKGROUND)) == 2 * SIZE - 1
  # Origin outside the window: no axis lines at all.
  shifted = render_scatter(None, None, extent=(1.0, 2.0, 1.0, 2.0), size=SIZE)
  assert color_mask(shifted, scatter.BACKGROUND).all()


def test_generator_colours_only_where_points_are():
  fake = np.array([[0.5, 0.5], [-0.5, -0.5]])
  ids = np.array([0, 1])
  image = render_scatter(None, fake, ids, extent=EXTENT, size=SIZE, legend=False)
  disk = len(scatter._disk_offsets(2)[0])
  for (x, y), g in zip(fake, ids):
    row, col = pixel_of(x, y)
    np.testing.assert_array_equal(image[row, col], generator_color(g))
    mask = color_mask(image, generator_color(g))
    rows, cols = np.nonzero(mask)
    # The colour forms exactly one radius-2 dot around the point.
    assert mask.sum() == disk
    assert np.abs(rows - row).max() <= 2 and np.abs(cols - col).max() <= 2
  # An unused palette entry appears nowhere.
  assert not color_mask(image, generator_color(2)).any()


def test_real_points_drawn_below_fake_points():
  real = np.array([[0.5, -0.5], [0.0, 0.5]])
  fake = np.array([[0.0, 0.5]])
  image = render_scatter(real, fake, extent=EXTENT, size=SIZE, real_radius=1)
  row, col = pixel_of(0.5, -0.5)
  np.testing.assert_array_equal(image[row, col], scatter.REAL_COLOR)
  # Lone real point: a 3x3 dot.
  assert color_mask(image[row - 2:row + 3, col - 2:col + 3], scatter.REAL_COLOR).sum() == 9
  # Where real and fake coincide the generated sample is on top.
  row, col = pixel_of(0.0, 0.5)
  np.testing.assert_array_equal(image[row, col], PALETTE[0])


def test_default_extent_contains_real_data_with_margin():
  real = np.array([[-1.0, -1.0], [1.0, 1.0]])
  image = render_scatter(real, None, size=SIZE, real_radius=0)
  # Span 2 plus 15% of it on each side -> window [-1.3, 1.3]^2.
  extent = (-1.3, 1.3, -1.3, 1.3)
  mask = color_mask(image, scatter.REAL_COLOR)
  assert mask.sum() == 2
  assert mask[pixel_of(-1.0, -1.0, extent)] and mask[pixel_of(1.0, 1.0, extent)]


def test_points_outside_extent_and_nonfinite_are_skipped():
  fake = np.array([[50.0, 0.2], [np.nan, 0.0], [0.0, np.inf], [1e300, -1e300]])
  image = render_scatter(None, fake, np.arange(4), extent=EXTENT, size=SIZE, legend=False)
  for g in range(4):
    assert not color_mask(image, generator_color(g)).any()


def test_many_points_vectorised_and_colour_per_generator():
  rng = np.random.default_rng(0)
  n = 100_000
  ids = rng.integers(0, 20, n)
  fake = rng.uniform(-1, 1, size=(n, 2))
  image = render_scatter(fake, fake, ids, size=200, legend=False)
  present = {g for g in range(20) if color_mask(image, generator_color(g)).any()}
  # Palette cycles after its length; every colour in use shows up.
  assert present == set(range(20))


def test_palette_is_large_and_well_separated():
  palette = PALETTE.astype(np.int64)
  assert palette.shape[0] >= 16 and palette.shape[1] == 3
  dist = np.sqrt(((palette[:, None] - palette[None]) ** 2).sum(-1))
  np.fill_diagonal(dist, np.inf)
  assert dist.min() > 40
  for reserved in (scatter.BACKGROUND, scatter.AXIS_COLOR, scatter.REAL_COLOR):
    assert np.sqrt(((palette - reserved.astype(np.int64)) ** 2).sum(-1)).min() > 60
  np.testing.assert_array_equal(generator_color(len(PALETTE) + 3), PALETTE[3])


def test_legend_shows_swatches_for_all_generators():
  fake = np.zeros((4, 2))
  image = render_scatter(None, fake, np.zeros(4, np.int64), num_generators=3,
                         extent=EXTENT, size=SIZE)
  for g in (1, 2):  # these generators have no points: only the legend shows them
    rows, cols = np.nonzero(color_mask(image, generator_color(g)))
    assert rows.size > 0
    assert rows.max() < SIZE // 2 and cols.min() > SIZE // 2  # top-right corner
  no_legend = render_scatter(None, fake, np.zeros(4, np.int64), num_generators=3,
                             extent=EXTENT, size=SIZE, legend=False)
  assert not color_mask(no_legend, generator_color(1)).any()


def test_title_is_rendered_at_top():
  plain = render_scatter(None, None, extent=EXTENT, size=SIZE)
  titled = render_scatter(None, None, extent=EXTENT, size=SIZE, title="Step 10")
  text = color_mask(titled, scatter.TEXT_COLOR)
  assert not color_mask(plain, scatter.TEXT_COLOR).any()
  rows, _ = np.nonzero(text)
  assert rows.size > 20 and rows.max() < 20


def test_side_by_side_widths_and_padding():
  a = np.zeros((5, 10, 3), np.uint8)
  b = np.zeros((5, 20, 3), np.uint8)
  c = np.zeros((5, 1, 3), np.uint8)
  out = side_by_side([a, b, c], pad=8)
  assert out.shape == (5, 10 + 8 + 20 + 8 + 1, 3)
  assert out.dtype == np.uint8
  assert (out[:, 10:18] == 255).all() and (out[:, 38:46] == 255).all()
  assert (out[:, :10] == 0).all() and (out[:, 18:38] == 0).all()
  assert side_by_side([a], pad=8).shape == a.shape
  assert side_by_side([a, b], pad=0).shape == (5, 30, 3)
  with pytest.raises(ValueError, match="images"):
    side_by_side([a, np.zeros((6, 4, 3), np.uint8)])
  with pytest.raises(ValueError, match="images"):
    side_by_side([])


def test_save_png_round_trip_creates_dirs(tmp_path):
  image = render_scatter(np.zeros((2, 2)), np.ones((2, 2)) * 0.3, np.array([0, 1]), size=48)
  path = tmp_path / "nested" / "dir" / "plot.png"
  assert save_png(image, str(path)) == str(path)
  decoded = tf.io.decode_png(tf.io.read_file(str(path)), channels=3).numpy()
  np.testing.assert_array_equal(decoded, image)
  assert os.listdir(path.parent) == ["plot.png"]  # no temporary leftovers


def test_save_png_leaves_nothing_on_failure(tmp_path, monkeypatch):
  path = tmp_path / "plot.png"
  with pytest.raises(ValueError, match="image"):
    save_png(np.zeros((4, 4, 3), np.float32), str(path))

  def broken_rename(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(tf.io.gfile, "rename", broken_rename)
  with pytest.raises(OSError, match="disk full"):
    save_png(np.zeros((4, 4, 3), np.uint8), str(path))
  assert os.listdir(tmp_path) == []


def test_image_summary_tensor_feeds_tf_summary(tmp_path):
  image = render_scatter(None, np.zeros((1, 2)), size=32)
  tensor = image_summary_tensor(image)
  assert tensor.shape == (1, 32, 32, 3) and tensor.dtype == tf.uint8
  np.testing.assert_array_equal(tensor.numpy()[0], image)
  assert image_summary_tensor(image[None]).shape == (1, 32, 32, 3)
  writer = tf.summary.create_file_writer(str(tmp_path))
  with writer.as_default():
    assert tf.summary.image("scatter", tensor, step=0)
  writer.close()
  assert any(name.startswith("events.out") for name in os.listdir(tmp_path))
  with pytest.raises(ValueError, match="image"):
    image_summary_tensor(np.zeros((2, 8, 8, 3), np.uint8))


@pytest.mark.parametrize("kwargs, name", [
    (dict(fake=np.zeros((3, 3))), "fake"),
    (dict(real=np.zeros(4)), "real"),
    (dict(generator_ids=np.zeros(2, np.int64)), "generator_ids"),
    (dict(generator_ids=np.full(3, 0.5)), "generator_ids"),
    (dict(generator_ids=-np.ones(3, np.int64)), "generator_ids"),
    (dict(generator_ids=np.arange(3), num_generators=2), "num_generators"),
    (dict(num_generators=2), "num_generators"),
    (dict(extent=(1.0, 0.0, 0.0, 1.0)), "extent"),
    (dict(extent=(0.0, 1.0)), "extent"),
    (dict(size=8), "size"),
])
def test_render_validation(kwargs, name):
  args = dict(real=np.zeros((3, 2)), fake=np.zeros((3, 2)))
  args.update(kwargs)
  with pytest.raises(ValueError, match=name):
    render_scatter(**args)
