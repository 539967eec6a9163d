"""Scatter plots of real and generated 2-D samples, coloured by generator.

Plots of real vs. generated samples are the main way to eyeball mode collapse
on the toy mixtures: real data is drawn in grey underneath, every generator's
samples in its own colour (see `colors.PALETTE`), with a legend to the right of
the plot so it never hides data.
"""

import collections
import math

import numpy as np
from matplotlib.lines import Line2D

from tf_stackelberg.visualization import _figure
from tf_stackelberg.visualization import colors

__all__ = ["render_scatter"]

MIN_SIZE = 100
# Pixel margins around the square plot panel.
_LEFT, _BOTTOM, _RIGHT = 40, 26, 12
_TOP, _TOP_TITLE = 12, 30
_LEGEND_ROW = 14.0  # pixels per legend row at the legend font size
_LEGEND_DOT = 7  # diameter in pixels of the legend's colour dots
_LEGEND_COLUMN = 80  # generous width per legend column; the image is cropped after drawing

Layout = collections.namedtuple("Layout", ["top", "left", "side", "width"])


def layout(size, title):
  """Where the square plot panel goes in an image `size` pixels high.

  Returns:
    `Layout(top, left, side, width)`: the panel's top row, left column and
    side length, and the image width without a legend, in pixels.
  """
  top = _TOP_TITLE if title else _TOP
  side = size - top - _BOTTOM
  return Layout(top, _LEFT, side, _LEFT + side + _RIGHT)


def _as_xy(points, name):
  """Converts `points` (or None) to a float64 `[N, 2]` array or raises ValueError."""
  if points is None:
    return np.zeros((0, 2), dtype=np.float64)
  try:
    arr = np.asarray(points, dtype=np.float64)
  except (TypeError, ValueError) as exc:
    raise ValueError(f"`{name}` must be a numeric array of shape [N, 2]: {exc}") from exc
  if arr.size == 0:
    return np.zeros((0, 2), dtype=np.float64)
  if arr.ndim != 2 or arr.shape[1] != 2:
    raise ValueError(f"`{name}` must have shape [N, 2]; got shape {arr.shape}.")
  return arr


def _generator_ids(generator_ids, num_generators, num_fake):
  """Validates ids against the fake samples; returns (int64 ids or None, K or None)."""
  if generator_ids is None:
    if num_generators is not None:
      raise ValueError("`num_generators` was given without `generator_ids`.")
    return None, None
  ids = np.asarray(generator_ids)
  if ids.size == 0:
    ids = np.zeros((0,), dtype=np.int64)
  if ids.ndim != 1 or ids.shape[0] != num_fake:
    raise ValueError(
        f"`generator_ids` must have shape [{num_fake}] (one id per fake sample); "
        f"got shape {ids.shape}.")
  if ids.size and not np.issubdtype(ids.dtype, np.integer):
    raise ValueError(f"`generator_ids` must contain integers; got dtype {ids.dtype}.")
  ids = ids.astype(np.int64)
  if ids.size and ids.min() < 0:
    raise ValueError(f"`generator_ids` must be non-negative; got {int(ids.min())}.")
  needed = int(ids.max()) + 1 if ids.size else 0
  if num_generators is None:
    return ids, needed
  if isinstance(num_generators, bool) or int(num_generators) != num_generators:
    raise ValueError(f"`num_generators` must be an integer; got {num_generators!r}.")
  if int(num_generators) < needed:
    raise ValueError(
        f"`num_generators`={num_generators} but `generator_ids` contains id {needed - 1}.")
  return ids, int(num_generators)


def default_extent(points):
  """Square extent around `points` with a 15% margin (equal aspect keeps rings round)."""
  finite = points[np.all(np.isfinite(points), axis=1)]
  if finite.shape[0] == 0:
    return (-1.0, 1.0, -1.0, 1.0)
  lo, hi = finite.min(axis=0), finite.max(axis=0)
  center = (lo + hi) / 2.0
  span = float((hi - lo).max())
  if span <= 1e-6 * max(1.0, float(np.abs(center).max())):
    half = 1.0  # a single location: a unit window around it
  else:
    half = span * (0.5 + 0.15)  # half the span plus 15% of it on each side
  return (float(center[0] - half), float(center[0] + half),
          float(center[1] - half), float(center[1] + half))


def _validate_extent(extent):
  """Returns `extent` as 4 floats with xmax > xmin and ymax > ymin."""
  if isinstance(extent, (str, bytes)):
    raise ValueError(f"`extent` must be (xmin, xmax, ymin, ymax); got {extent!r}.")
  try:
    values = tuple(float(v) for v in extent)
  except (TypeError, ValueError) as exc:
    raise ValueError(f"`extent` must be (xmin, xmax, ymin, ymax): {exc}") from exc
  if len(values) != 4 or not all(np.isfinite(values)):
    raise ValueError(
        f"`extent` must be 4 finite numbers (xmin, xmax, ymin, ymax); got {extent!r}.")
  xmin, xmax, ymin, ymax = values
  if not (xmax > xmin and ymax > ymin):
    raise ValueError(f"`extent` needs xmax > xmin and ymax > ymin; got {extent!r}.")
  return values


def _visible(points, extent, margin):
  """Rows of `points` that are finite and within `extent` widened by `margin` (data units)."""
  xmin, xmax, ymin, ymax = extent
  dx, dy = margin * (xmax - xmin), margin * (ymax - ymin)
  with np.errstate(invalid="ignore"):
    return ((points[:, 0] >= xmin - dx) & (points[:, 0] <= xmax + dx)
            & (points[:, 1] >= ymin - dy) & (points[:, 1] <= ymax + dy))


def _check_radius(value, name):
  try:
    radius = float(value)
  except (TypeError, ValueError):
    radius = float("nan")
  if not (np.isfinite(radius) and radius > 0):
    raise ValueError(f"`{name}` must be a positive number of pixels; got {value!r}.")
  return radius


def _legend_entries(has_real, has_fake, num_generators):
  """Legend handles and labels: real data first, then one swatch per generator."""
  def swatch(color):
    return Line2D([], [], linestyle="none", marker="o", markeredgewidth=0,
                  markersize=_figure.points(_LEGEND_DOT), color=colors.as_float(color))

  handles, labels = [], []
  if has_real:
    handles.append(swatch(colors.REAL_COLOR))
    labels.append("real")
  if num_generators is None:
    if has_fake:
      handles.append(swatch(colors.PALETTE[0]))
      labels.append("generated")
  else:
    for g in range(num_generators):
      handles.append(swatch(colors.generator_color(g)))
      labels.append(f"G{g}")
  return handles, labels


def _add_title(fig, title, box, width, height):
  """Centres `title` above the panel, shifted and shrunk as needed to fit `width` pixels."""
  text = fig.text(0.0, 1.0 - (box.top / 2) / height, title, ha="center", va="center",
                  **_figure.text_kwargs(_figure.TITLE_SIZE))
  room = width - 8
  renderer = fig.canvas.get_renderer()
  extent = text.get_window_extent(renderer).width
  for _ in range(4):  # glyph widths do not scale exactly with the font size
    if extent <= room or text.get_fontsize() <= 5.0:
      break
    text.set_fontsize(max(5.0, text.get_fontsize() * 0.98 * room / extent))
    extent = text.get_window_extent(renderer).width
  center = box.left + box.side / 2
  center = min(max(center, 4 + extent / 2), width - 4 - extent / 2)
  text.set_x(center / fig.bbox.width)


def render_scatter(real, fake, generator_ids=None, num_generators=None, extent=None,
                   title=None, size=400, point_radius=2.0, real_radius=1.2, legend=True):
  """Renders real and generated 2-D samples as an RGB scatter plot.

  The image is `size` pixels high; the square plot panel fills it apart from
  the tick labels and the title (see `layout`). The legend, if any, sits to
  the right of the panel and wraps into columns when there are many
  generators, so it never hides data.

  Args:
    real: `[N, 2]` real samples (or None), drawn as grey dots underneath the
      generated samples.
    fake: `[M, 2]` generated samples (or None).
    generator_ids: optional `[M]` integer generator id per fake sample; every
      generator gets its own palette colour (`colors.generator_color`).
      Without ids all fake samples use the first palette colour. Fake samples
      are drawn in a fixed shuffled order, so overlapping generators show up as
      a mix instead of the highest id always hiding the others.
    num_generators: number of generators listed in the legend; defaults to
      `max(generator_ids) + 1`.
    extent: `(xmin, xmax, ymin, ymax)` in data units. Defaults to a square
      window around the real samples (the fake ones if there are no real ones)
      with a 15% margin. Points outside the extent or non-finite are skipped.
    title: optional text above the plot.
    size: image height in pixels (at least `MIN_SIZE`).
    point_radius: dot radius in pixels for generated samples.
    real_radius: dot radius in pixels for real samples.
    legend: whether to draw the legend (real data and one swatch per generator).

  Returns:
    `uint8` array of shape `[size, W, 3]`: `W` is `layout(size, title).width`
    plus the legend's width.

  Raises:
    ValueError: malformed samples, ids, extent, size or radii.
  """
  size = _figure.check_size(size, "size", MIN_SIZE)
  point_radius = _check_radius(point_radius, "point_radius")
  real_radius = _check_radius(real_radius, "real_radius")
  real = _as_xy(real, "real")
  fake = _as_xy(fake, "fake")
  ids, num_generators = _generator_ids(generator_ids, num_generators, fake.shape[0])
  if extent is None:
    extent = default_extent(real if real.shape[0] else fake)
  extent = _validate_extent(extent)
  title = None if title is None else str(title)

  box = layout(size, title)
  handles, labels = ([], []) if not legend else _legend_entries(
      real.shape[0] > 0, fake.shape[0] > 0, num_generators)
  rows = max(1, int(box.side // _LEGEND_ROW))
  columns = math.ceil(len(labels) / rows) if labels else 0
  plot_width = box.width
  width = plot_width + columns * _LEGEND_COLUMN

  # Points far outside the window are dropped up front: cheaper, and it keeps
  # huge coordinates away from matplotlib's transforms.
  margin = 0.1
  real = real[_visible(real, extent, margin)]
  keep = _visible(fake, extent, margin)
  fake = fake[keep]
  if ids is not None:
    ids = ids[keep]
    point_colors = colors.PALETTE[ids % len(colors.PALETTE)]
    order = np.random.default_rng(0).permutation(fake.shape[0])
    fake, point_colors = fake[order], point_colors[order]
  else:
    point_colors = np.broadcast_to(colors.PALETTE[0], (fake.shape[0], 3))

  with _figure.canvas(width, size) as fig:
    ax = _figure.add_axes(fig, box.left, box.top, box.side, box.side)
    xmin, xmax, ymin, ymax = extent
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("auto")
    ax.locator_params(nbins=6)
    ax.ticklabel_format(useOffset=False)  # an offset label would collide with the title
    if real.shape[0]:
      ax.scatter(real[:, 0], real[:, 1], s=_figure.points(2 * real_radius) ** 2,
                 c=[colors.as_float(colors.REAL_COLOR)], marker="o", linewidths=0,
                 edgecolors="none", zorder=2)
    if fake.shape[0]:
      ax.scatter(fake[:, 0], fake[:, 1], s=_figure.points(2 * point_radius) ** 2,
                 c=point_colors.astype(np.float64) / 255.0, marker="o", linewidths=0,
                 edgecolors="none", zorder=3)
    if labels:
      anchor = ((plot_width - 4) / width, 1.0 - box.top / size)
      leg = fig.legend(handles, labels, loc="upper left", bbox_to_anchor=anchor,
                       ncols=columns, frameon=False, borderaxespad=0.0, borderpad=0.0,
                       handlelength=0.8, handletextpad=0.4, columnspacing=0.9,
                       labelspacing=0.45, prop=dict(family=_figure.FONT,
                                                    size=_figure.FONT_SIZE))
      for text in leg.get_texts():
        text.set_color(colors.as_float(colors.TEXT_COLOR))
      # Drop the unused part of the space reserved for the legend.
      right = leg.get_window_extent(fig.canvas.get_renderer()).x1
      width = min(width, max(plot_width, int(math.ceil(right)) + 8))
    if title:
      _add_title(fig, title, box, width, size)
    image = _figure.to_array(fig)
  return np.ascontiguousarray(image[:, :width])
