"""Tests for the figures: scatter plots, energy histograms, image grids and file output."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.visualization import (
    PALETTE,
    REAL_COLOR,
    energy_histograms,
    generator_color,
    image_grid,
    image_summary_tensor,
    render_scatter,
    save_png,
    side_by_side,
)
from tf_stackelberg.visualization import colors
from tf_stackelberg.visualization import scatter

SIZE = 200
EXTENT = (-1.0, 1.0, -1.0, 1.0)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pixel_of(x, y, extent=EXTENT, size=SIZE, title=None):
  """(row, col) of the pixel holding data point (x, y) in the plot panel."""
  box = scatter.layout(size, title)
  xmin, xmax, ymin, ymax = extent
  col = box.left + (x - xmin) / (xmax - xmin) * box.side
  row = box.top + (ymax - y) / (ymax - ymin) * box.side
  return int(np.floor(row)), int(np.floor(col))


def color_mask(image, color):
  return np.all(image == np.asarray(color, np.uint8), axis=-1)


def colored(image):
  """Pixels that are not a shade of grey (antialiased edges of coloured marks included)."""
  image = image.astype(np.int64)
  return (image.max(axis=-1) - image.min(axis=-1)) > 8


def near(mask, row, col, radius):
  """Whether every True pixel of `mask` lies within `radius` pixels of (row, col)."""
  rows, cols = np.nonzero(mask)
  return bool(np.all(np.hypot(rows - row, cols - col) <= radius))


# --- scatter plots -----------------------------------------------------------------


def test_output_shape_dtype_and_background():
  image = render_scatter(np.zeros((3, 2)), np.ones((3, 2)) * 0.5, size=SIZE, legend=False)
  box = scatter.layout(SIZE, None)
  assert image.shape == (SIZE, box.width, 3)
  assert box.top + box.side < SIZE and box.left + box.side < box.width
  assert image.dtype == np.uint8 and image.flags.c_contiguous
  np.testing.assert_array_equal(image[0, 0], colors.BACKGROUND)
  np.testing.assert_array_equal(image[-1, -1], colors.BACKGROUND)
  with_legend = render_scatter(np.zeros((3, 2)), np.ones((3, 2)) * 0.5, size=SIZE)
  assert with_legend.shape[0] == SIZE and box.width < with_legend.shape[1] < box.width + 80


def test_rendering_is_deterministic_and_thread_safe():
  rng = np.random.default_rng(1)
  args = (rng.normal(size=(500, 2)), rng.normal(size=(500, 2)), rng.integers(0, 5, 500))
  expected = render_scatter(*args, title="run 3, step 1200")
  results = [None] * 4

  def work(i):
    results[i] = render_scatter(*args, title="run 3, step 1200")

  threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  for result in results:
    np.testing.assert_array_equal(result, expected)


def test_generator_colours_only_where_points_are():
  fake = np.array([[-0.8, 0.8], [0.8, -0.8]])  # top-left and bottom-right corners
  ids = np.array([0, 1])
  image = render_scatter(None, fake, ids, extent=EXTENT, size=SIZE, legend=False)
  for (x, y), g in zip(fake, ids):
    row, col = pixel_of(x, y)
    np.testing.assert_array_equal(image[row, col], generator_color(g))
    mask = color_mask(image, generator_color(g))
    assert 4 <= mask.sum() <= 16  # a dot of radius 2 px, edges antialiased
    assert near(mask, row, col, 3)
  # Every coloured pixel belongs to one of the two dots; nothing else has colour.
  (r0, c0), (r1, c1) = pixel_of(-0.8, 0.8), pixel_of(0.8, -0.8)
  rows, cols = np.nonzero(colored(image))
  assert rows.size > 0
  assert np.all(np.minimum(np.hypot(rows - r0, cols - c0), np.hypot(rows - r1, cols - c1)) <= 4)
  assert not color_mask(image, generator_color(2)).any()


def test_real_data_is_grey_and_below_generated_samples():
  real = np.array([[0.5, -0.5], [0.0, 0.5]])
  only_real = render_scatter(real, None, extent=EXTENT, size=SIZE)
  assert not colored(only_real).any()  # grey dots, grey legend entry, black text
  row, col = pixel_of(0.5, -0.5)
  np.testing.assert_array_equal(only_real[row, col], REAL_COLOR)
  np.testing.assert_array_equal(REAL_COLOR, (150, 150, 150))
  # Where real and fake samples coincide the generated one is on top.
  image = render_scatter(real, np.array([[0.0, 0.5]]), extent=EXTENT, size=SIZE)
  row, col = pixel_of(0.0, 0.5)
  np.testing.assert_array_equal(image[row, col], PALETTE[0])
  row, col = pixel_of(0.5, -0.5)
  np.testing.assert_array_equal(image[row, col], REAL_COLOR)


def test_default_extent_contains_real_data_with_margin():
  real = np.array([[-1.0, -1.0], [1.0, 1.0]])
  image = render_scatter(real, np.array([[0.0, 0.0]]), size=SIZE, legend=False)
  extent = (-1.3, 1.3, -1.3, 1.3)  # span 2 plus 15% of it on each side
  for x, y in ((-1.0, -1.0), (1.0, 1.0)):
    np.testing.assert_array_equal(image[pixel_of(x, y, extent)], REAL_COLOR)
  np.testing.assert_array_equal(image[pixel_of(0.0, 0.0, extent)], PALETTE[0])
  # Without real data the window is fitted to the generated samples.
  fake_only = render_scatter(None, real, np.array([0, 1]), size=SIZE, legend=False)
  np.testing.assert_array_equal(fake_only[pixel_of(1.0, 1.0, extent)], generator_color(1))


def test_points_outside_extent_and_nonfinite_are_skipped():
  fake = np.array([[50.0, 0.2], [np.nan, 0.0], [0.0, np.inf], [1e300, -1e300], [1.2, 0.0]])
  real = np.array([[np.nan, np.nan], [-1e300, 0.0]])
  image = render_scatter(real, fake, np.arange(5), extent=EXTENT, size=SIZE, legend=False)
  assert not colored(image).any()
  np.testing.assert_array_equal(
      image, render_scatter(None, None, extent=EXTENT, size=SIZE, legend=False))


def test_many_points_show_every_generator_colour():
  rng = np.random.default_rng(0)
  n = 100_000
  ids = rng.integers(0, 20, n)
  fake = rng.uniform(-1, 1, size=(n, 2))
  image = render_scatter(fake, fake, ids, size=300, legend=False)
  present = {g for g in range(20) if color_mask(image, generator_color(g)).any()}
  assert present == set(range(20))


def test_palette_is_large_and_well_separated():
  palette = PALETTE.astype(np.int64)
  assert palette.shape[0] >= 25 and palette.shape[1] == 3  # the 25-mode grid, one each
  dist = np.sqrt(((palette[:, None] - palette[None]) ** 2).sum(-1))
  np.fill_diagonal(dist, np.inf)
  assert dist.min() > 40
  # Every generator colour is clearly saturated, so none passes for real data or text.
  assert (palette.max(axis=1) - palette.min(axis=1)).min() > 80
  for reserved in (colors.BACKGROUND, REAL_COLOR, colors.TEXT_COLOR):
    assert np.sqrt(((palette - reserved.astype(np.int64)) ** 2).sum(-1)).min() > 60
  np.testing.assert_array_equal(generator_color(len(PALETTE) + 3), PALETTE[3])


def legend_region(image, size=SIZE):
  box = scatter.layout(size, None)
  return image[:, box.left + box.side + 2:]


def test_legend_lists_every_generator_right_of_the_plot():
  fake = np.zeros((4, 2))
  ids = np.zeros(4, np.int64)
  image = render_scatter(np.array([[0.5, 0.5]]), fake, ids, num_generators=3,
                         extent=EXTENT, size=SIZE)
  legend = legend_region(image)
  for g in (0, 1, 2):
    rows, _ = np.nonzero(color_mask(legend, generator_color(g)))
    assert rows.size > 0
    assert rows.max() < SIZE // 2  # listed from the top
  # Generators 1 and 2 have no points: the legend is the only place they show.
  panel = image[:, :SIZE - 10]
  assert not color_mask(panel, generator_color(1)).any()
  assert color_mask(legend, REAL_COLOR).any()  # "real" entry
  assert (legend.max(axis=-1) < 100).sum() > 30  # label text
  # Entries are listed top to bottom in order: real, G0, G1, G2.
  first_row = [np.nonzero(color_mask(legend, c))[0].min()
               for c in (REAL_COLOR, generator_color(0), generator_color(1), generator_color(2))]
  assert first_row == sorted(first_row)
  no_legend = render_scatter(None, fake, ids, num_generators=3, extent=EXTENT, size=SIZE,
                             legend=False)
  assert no_legend.shape == (SIZE, scatter.layout(SIZE, None).width, 3)
  assert not color_mask(no_legend, generator_color(1)).any()


def test_legend_with_25_generators_stays_compact():
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 25, 1000)
  fake = rng.uniform(-1, 1, (1000, 2))
  image = render_scatter(fake, fake, ids, 25, extent=EXTENT, size=400)
  assert image.shape[0] == 400 and image.shape[1] < 400 * 1.3
  legend = legend_region(image, 400)
  for g in range(25):
    assert color_mask(legend, generator_color(g)).any(), g
  # Wrapped into columns: the last entry sits right of the first, not below the plot.
  first_cols = np.nonzero(color_mask(legend, generator_color(0)))[1]
  last_cols = np.nonzero(color_mask(legend, generator_color(24)))[1]
  assert last_cols.min() > first_cols.max()


def test_title_is_rendered_at_top():
  plain = render_scatter(None, None, extent=EXTENT, size=SIZE)
  titled = render_scatter(None, None, extent=EXTENT, size=SIZE, title="Step 10, mixed Case")
  box = scatter.layout(SIZE, "x")
  dark = lambda im: im.max(axis=-1) < 120  # pylint: disable=unnecessary-lambda-assignment
  # Above the panel, right of the y tick labels: only the title draws there.
  assert not dark(plain[:box.top - 4, box.left + 10:]).any()
  assert dark(titled[:box.top - 4, box.left + 10:]).sum() > 40
  # The panel moves down to make room, so the plot area is shifted, not overdrawn.
  assert box.top > scatter.layout(SIZE, None).top


def test_long_title_is_shrunk_to_fit():
  title = "multi-branch (8 branches), step 25000; " * 2  # ~550 pixels at full size
  image = render_scatter(None, np.zeros((3, 2)), [0, 1, 2], 3, size=400, title=title)
  assert image.shape[1] < 500
  band = image[:scatter.layout(400, title).top - 4]
  _, cols = np.nonzero(band.max(axis=-1) < 160)
  assert cols.size > 40
  assert cols.min() >= 2 and cols.max() < image.shape[1] - 2


def test_single_location_gets_a_unit_window():
  image = render_scatter(np.full((2, 2), 3.0), None, size=SIZE, legend=False)
  extent = (2.0, 4.0, 2.0, 4.0)
  np.testing.assert_array_equal(image[pixel_of(3.0, 3.0, extent)], REAL_COLOR)
  assert scatter.default_extent(np.zeros((0, 2))) == (-1.0, 1.0, -1.0, 1.0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(fake=np.zeros((3, 3))), "fake"),
    (dict(real=np.zeros(4)), "real"),
    (dict(real=[["a", "b"]]), "real"),
    (dict(generator_ids=np.zeros(2, np.int64)), "generator_ids"),
    (dict(generator_ids=np.full(3, 0.5)), "generator_ids"),
    (dict(generator_ids=-np.ones(3, np.int64)), "generator_ids"),
    (dict(generator_ids=np.arange(3), num_generators=2), "num_generators"),
    (dict(num_generators=2), "num_generators"),
    (dict(extent=(1.0, 0.0, 0.0, 1.0)), "extent"),
    (dict(extent=(0.0, 1.0, 0.0, 0.0)), "extent"),
    (dict(extent=(0.0, 1.0)), "extent"),
    (dict(extent=(0.0, np.nan, 0.0, 1.0)), "extent"),
    (dict(extent="0011"), "extent"),
    (dict(size=8), "size"),
    (dict(size=250.5), "size"),
    (dict(point_radius=0), "point_radius"),
    (dict(real_radius=-1), "real_radius"),
])
def test_render_validation(kwargs, name):
  args = dict(real=np.zeros((3, 2)), fake=np.zeros((3, 2)))
  args.update(kwargs)
  with pytest.raises(ValueError, match=name):
    render_scatter(**args)


def test_mismatched_ids_message_names_both_lengths():
  with pytest.raises(ValueError, match=r"shape \[3\].*got shape \(2,\)"):
    render_scatter(None, np.zeros((3, 2)), np.zeros(2, np.int64))


def test_render_leaves_pyplot_and_the_backend_alone():
  """Figures draw on their own Agg canvas: no module of the package imports pyplot,
  and rendering changes neither the backend nor pyplot's list of figures."""
  package = os.path.join(REPO, "tf_stackelberg", "visualization")
  for name in os.listdir(package):
    if name.endswith(".py"):
      with open(os.path.join(package, name)) as f:
        source = f.read()
      assert "import matplotlib.pyplot" not in source, name
      assert "from matplotlib import pyplot" not in source, name
  code = ("import sys, numpy as np, matplotlib\n"
          "import tf_stackelberg.visualization as v\n"
          "backend = matplotlib.get_backend()\n"
          "v.render_scatter(np.zeros((3, 2)), np.ones((3, 2)), [0, 1, 2], title='t')\n"
          "v.energy_histograms({'a': np.arange(10.0)})\n"
          "figures = sys.modules['matplotlib.pyplot'].get_fignums() "
          "if 'matplotlib.pyplot' in sys.modules else []\n"
          "print(matplotlib.get_backend() == backend, figures)\n")
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, timeout=120, check=True)
  assert out.stdout.strip().splitlines()[-1] == "True []"

def test_energy_histograms_overlay_one_colour_per_sampler():
  rng = np.random.default_rng(0)
  energies = {"metropolis": rng.normal(1.0, 0.3, 4000),
              "wang_landau": rng.uniform(4.0, 9.0, (8, 500))}  # any shape is flattened
  image = energy_histograms(energies, bins=40, title="Visited energies")
  assert image.shape == (320, 480, 3) and image.dtype == np.uint8
  np.testing.assert_array_equal(image, energy_histograms(energies, bins=40,
                                                         title="Visited energies"))
  half = image.shape[1] // 2
  for index, left_half in ((0, True), (1, False)):
    _, cols = np.nonzero(color_mask(image, generator_color(index)))
    assert cols.size > 50
    # Each sampler's outline lies over its energy range (only its legend line,
    # top right, lies elsewhere).
    assert np.mean((cols < half) == left_half) > 0.8, index
  assert not color_mask(image, generator_color(2)).any()


def test_energy_histograms_options_and_validation():
  energies = {"a": [0.0, 1.0, 1.0, np.nan, np.inf], "b": [2.0, 2.0]}
  counts = energy_histograms(energies, bins=[0.0, 0.5, 1.5, 2.5], density=False,
                             log_scale=True, size=(300, 200))
  assert counts.shape == (200, 300, 3)
  assert energy_histograms({"single": [3.0, 3.0]}).shape == (320, 480, 3)
  for bad, name in (({}, "energies"), ([1.0], "energies"), ({"a": [np.nan]}, "energies"),
                    ({"a": ["x"]}, "energies")):
    with pytest.raises(ValueError, match=name):
      energy_histograms(bad)
  for bins in (0, [1.0], [2.0, 1.0], [0.0, np.inf]):
    with pytest.raises(ValueError, match="bins"):
      energy_histograms(energies, bins=bins)
  for size in ((10, 200), 300, (300.5, 200)):
    with pytest.raises(ValueError, match="size"):
      energy_histograms(energies, size=size)


# --- image grids -------------------------------------------------------------------


def test_image_grid_row_k_shows_generator_k():
  k, n, h, w = 3, 4, 5, 6
  values = np.array([-1.0, 0.0, 1.0])  # one constant value per generator
  images = np.broadcast_to(values[:, None, None, None, None], (k, n, h, w, 3)).copy()
  images[:, :, 0, 0, 0] = np.linspace(-1, 1, n)[None]  # mark sample order
  grid = image_grid(images, pad=2, color_bar=4)
  assert grid.dtype == np.uint8
  assert grid.shape == (2 + k * (h + 2), 2 + 4 + 2 + n * (w + 2), 3)
  expected = [0, 128, 255]
  for row in range(k):
    top = 2 + row * (h + 2)
    np.testing.assert_array_equal(grid[top:top + h, 2:6],
                                  np.broadcast_to(generator_color(row), (h, 4, 3)))
    for col in range(n):
      left = 8 + col * (w + 2)
      tile = grid[top:top + h, left:left + w]
      assert (tile[1:] == expected[row]).all() and (tile[:, 1:] == expected[row]).all()
      assert tile[0, 0, 0] == round((np.linspace(-1, 1, n)[col] + 1) / 2 * 255)
  # Padding is white.
  assert (grid[:2] == 255).all() and (grid[:, :2] == 255).all()
  assert (grid[2 + h:4 + h, 8:] == 255).all()


def test_image_grid_ranges_channels_and_scale():
  ones = np.ones((2, 3, 4, 4, 1))
  grey = image_grid(ones * 0.5, value_range=(0, 1), pad=0, color_bar=0)
  assert grey.shape == (8, 12, 3) and (grey == 128).all()
  assert (image_grid(ones * 7, pad=0, color_bar=0) == 255).all()  # clipped
  assert (image_grid(-ones * 7, pad=0, color_bar=0) == 0).all()
  raw = np.full((1, 2, 2, 2, 3), 17, np.uint8)
  assert (image_grid(raw, pad=0, color_bar=0) == 17).all()  # uint8 kept as is
  checker = np.zeros((1, 1, 2, 2, 1))
  checker[0, 0, 0, 0] = 1.0
  big = image_grid(checker, pad=0, color_bar=0, scale=3)
  assert big.shape == (6, 6, 3)
  assert (big[:3, :3] == 255).all() and (big[3:, :] == 128).all()


@pytest.mark.parametrize("images, kwargs, name", [
    (np.zeros((2, 4, 4, 3)), {}, "images"),
    (np.zeros((1, 2, 4, 4, 2)), {}, "images"),
    (np.zeros((0, 2, 4, 4, 3)), {}, "images"),
    (np.array([[[[["a"]]]]]), {}, "images"),
    (np.zeros((1, 1, 2, 2, 3)), dict(value_range=(1, 1)), "value_range"),
    (np.zeros((1, 1, 2, 2, 3)), dict(value_range=5), "value_range"),
    (np.zeros((1, 1, 2, 2, 3)), dict(pad=-1), "pad"),
    (np.zeros((1, 1, 2, 2, 3)), dict(scale=0), "scale"),
    (np.zeros((1, 1, 2, 2, 3)), dict(color_bar=1.5), "color_bar"),
])
def test_image_grid_validation(images, kwargs, name):
  with pytest.raises(ValueError, match=name):
    image_grid(images, **kwargs)


# --- panels, files and summaries ---------------------------------------------------


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
  with pytest.raises(ValueError, match="pad"):
    side_by_side([a], pad=-1)


def test_side_by_side_of_scatter_plots_with_different_legends():
  one = render_scatter(None, np.zeros((1, 2)), [0], 1, size=SIZE)
  many = render_scatter(None, np.zeros((1, 2)), [0], 30, size=SIZE)
  out = side_by_side([one, many])
  assert out.shape == (SIZE, one.shape[1] + 8 + many.shape[1], 3)


def test_save_png_round_trip_creates_dirs(tmp_path):
  rng = np.random.default_rng(0)
  image = render_scatter(rng.normal(size=(50, 2)), rng.normal(size=(50, 2)),
                         rng.integers(0, 3, 50), title="round trip")
  path = tmp_path / "nested" / "dir" / "plot.png"
  assert save_png(image, path) == str(path)
  decoded = tf.io.decode_png(tf.io.read_file(str(path)), channels=3).numpy()
  np.testing.assert_array_equal(decoded, image)
  assert os.listdir(path.parent) == ["plot.png"]  # no temporary leftovers
  # Same image, same bytes (no timestamps or other metadata in the file).
  save_png(image, tmp_path / "again.png")
  assert (tmp_path / "again.png").read_bytes() == path.read_bytes()
  assert path.stat().st_size < 60_000
  grey = np.full((4, 4, 1), 9, np.uint8)
  save_png(grey, tmp_path / "grey.png")
  np.testing.assert_array_equal(
      tf.io.decode_png(tf.io.read_file(str(tmp_path / "grey.png"))).numpy(), grey)


def test_save_png_replaces_existing_file_only_on_success(tmp_path, monkeypatch):
  path = tmp_path / "plot.png"
  old = np.zeros((4, 4, 3), np.uint8)
  save_png(old, path)
  old_bytes = path.read_bytes()
  for bad in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4)), np.zeros((0, 4, 3), np.uint8)):
    with pytest.raises(ValueError, match="image"):
      save_png(bad, path)
  assert path.read_bytes() == old_bytes

  def broken_rename(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(tf.io.gfile, "rename", broken_rename)
  with pytest.raises(OSError, match="disk full"):
    save_png(np.full((4, 4, 3), 200, np.uint8), path)
  assert os.listdir(tmp_path) == ["plot.png"]
  assert path.read_bytes() == old_bytes
  monkeypatch.undo()
  new = np.full((4, 4, 3), 200, np.uint8)
  save_png(new, path)
  np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(str(path))).numpy(), new)
  assert os.listdir(tmp_path) == ["plot.png"]


def test_save_png_on_a_bad_image_creates_nothing(tmp_path):
  with pytest.raises(ValueError, match="image"):
    save_png(np.zeros((4, 4, 3), np.float32), tmp_path / "sub" / "plot.png")
  assert os.listdir(tmp_path) == []


def test_image_summary_tensor_feeds_tf_summary(tmp_path):
  image = render_scatter(None, np.zeros((1, 2)), size=120)
  tensor = image_summary_tensor(image)
  assert tensor.shape == (1,) + image.shape and tensor.dtype == tf.uint8
  np.testing.assert_array_equal(tensor.numpy()[0], image)
  assert image_summary_tensor(image[None]).shape == (1,) + image.shape
  writer = tf.summary.create_file_writer(str(tmp_path))
  with writer.as_default():
    assert tf.summary.image("scatter", tensor, step=0)
  writer.close()
  assert any(name.startswith("events.out") for name in os.listdir(tmp_path))
  with pytest.raises(ValueError, match="image"):
    image_summary_tensor(np.zeros((2, 8, 8, 3), np.uint8))
  with pytest.raises(ValueError, match="image"):
    image_summary_tensor(np.zeros((8, 8, 3), np.float32))


def test_energy_histograms_with_weights_equal_the_repeated_values():
  # Bin centres weighted by visit counts draw the histogram of the repeated values.
  edges = np.linspace(0.0, 5.0, 6)
  centres = (edges[:-1] + edges[1:]) / 2
  counts = np.array([3, 0, 7, 1, 2])
  weighted = energy_histograms({"wl": centres}, bins=edges,
                                             weights={"wl": counts})
  repeated = energy_histograms({"wl": np.repeat(centres, counts)},
                                             bins=edges)
  np.testing.assert_array_equal(weighted, repeated)
  with pytest.raises(ValueError, match="weights"):
    energy_histograms({"wl": centres}, bins=edges,
                                    weights={"wl": counts[:3]})
