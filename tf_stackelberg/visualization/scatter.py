"""Dependency-light 2-D scatter plots rendered directly into numpy images.

Plots of real vs. generated samples coloured by generator are the main way to
eyeball mode collapse on the toy mixtures. The renderer only needs numpy, so
it works where no plotting library is installed; TensorFlow is imported
lazily, only for PNG encoding and TensorBoard image tensors.
"""

import os
import uuid

import numpy as np

__all__ = [
    "PALETTE",
    "generator_color",
    "render_scatter",
    "side_by_side",
    "save_png",
    "image_summary_tensor",
]

# Hand-picked, mutually well-separated colours (RGB). None is close to white
# (background), the light axis grey or the grey used for real samples.
PALETTE = np.array([
    (220, 30, 40),    # red
    (30, 90, 220),    # blue
    (30, 160, 60),    # green
    (250, 140, 20),   # orange
    (130, 50, 190),   # purple
    (0, 180, 200),    # cyan
    (230, 40, 180),   # magenta
    (140, 190, 20),   # lime
    (150, 85, 40),    # brown
    (20, 30, 120),    # navy
    (0, 120, 110),    # teal
    (250, 130, 160),  # pink
    (220, 180, 0),    # gold
    (120, 10, 40),    # maroon
    (110, 170, 250),  # sky blue
    (180, 130, 240),  # lavender
    (100, 110, 20),   # olive
    (255, 100, 70),   # coral
], dtype=np.uint8)

BACKGROUND = np.array((255, 255, 255), dtype=np.uint8)
AXIS_COLOR = np.array((215, 215, 215), dtype=np.uint8)
REAL_COLOR = np.array((120, 120, 120), dtype=np.uint8)
TEXT_COLOR = np.array((0, 0, 0), dtype=np.uint8)
LEGEND_BORDER = np.array((170, 170, 170), dtype=np.uint8)

# A tiny 3x5 bitmap font (upper case, digits, a little punctuation); enough for
# titles such as "step 1200 - 5 generators" and legend labels.
_GLYPH_ROWS = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": (".##", "#..", "#..", "#..", ".##"),
    "D": ("##.", "#.#", "#.#", "#.#", "##."),
    "E": ("###", "#..", "##.", "#..", "###"),
    "F": ("###", "#..", "##.", "#..", "#.."),
    "G": (".##", "#..", "#.#", "#.#", ".##"),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "J": ("..#", "..#", "..#", "#.#", ".#."),
    "K": ("#.#", "#.#", "##.", "#.#", "#.#"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#.#", "###", "###", "#.#", "#.#"),
    "N": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "O": (".#.", "#.#", "#.#", "#.#", ".#."),
    "P": ("##.", "#.#", "##.", "#..", "#.."),
    "Q": (".#.", "#.#", "#.#", "##.", ".##"),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": (".##", "#..", ".#.", "..#", "##."),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
    "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "W": ("#.#", "#.#", "###", "###", "#.#"),
    "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    "Z": ("###", "..#", ".#.", "#..", "###"),
    " ": ("...", "...", "...", "...", "..."),
    "-": ("...", "...", "###", "...", "..."),
    "+": ("...", ".#.", "###", ".#.", "..."),
    "=": ("...", "###", "...", "###", "..."),
    ".": ("...", "...", "...", "...", ".#."),
    ",": ("...", "...", "...", ".#.", "#.."),
    ":": ("...", ".#.", "...", ".#.", "..."),
    "/": ("..#", "..#", ".#.", "#..", "#.."),
    "_": ("...", "...", "...", "...", "###"),
    "(": (".#.", "#..", "#..", "#..", ".#."),
    ")": (".#.", "..#", "..#", "..#", ".#."),
    "%": ("#.#", "..#", ".#.", "#..", "#.#"),
    "?": ("###", "..#", ".##", "...", ".#."),
}
_GLYPHS = {ch: np.array([[c == "#" for c in row] for row in rows], dtype=bool)
           for ch, rows in _GLYPH_ROWS.items()}
_GLYPH_W, _GLYPH_H = 3, 5


def generator_color(index):
  """RGB colour (uint8 array of 3) used for generator ``index``; cycles the palette."""
  return PALETTE[int(index) % len(PALETTE)]


def _text_mask(text, scale):
  """Boolean bitmap of ``text`` in the built-in font, upscaled by ``scale``."""
  text = str(text).upper()
  if not text:
    return np.zeros((_GLYPH_H * scale, 0), dtype=bool)
  glyphs = []
  for i, ch in enumerate(text):
    glyphs.append(_GLYPHS.get(ch, _GLYPHS["?"]))
    if i + 1 < len(text):
      glyphs.append(np.zeros((_GLYPH_H, 1), dtype=bool))  # letter spacing
  mask = np.concatenate(glyphs, axis=1)
  return np.kron(mask, np.ones((scale, scale), dtype=bool)).astype(bool)


def _paint_mask(canvas, mask, top, left, color):
  """Paints ``mask`` onto ``canvas`` at (top, left), clipping at the borders."""
  h, w = mask.shape
  y0, x0 = max(top, 0), max(left, 0)
  y1, x1 = min(top + h, canvas.shape[0]), min(left + w, canvas.shape[1])
  if y1 <= y0 or x1 <= x0:
    return
  sub = mask[y0 - top:y1 - top, x0 - left:x1 - left]
  canvas[y0:y1, x0:x1][sub] = color


def _disk_offsets(radius):
  """Row/column offsets of the pixels forming a filled disk of ``radius``."""
  r = int(radius)
  dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
  keep = dy * dy + dx * dx <= r * r + r  # "+ r" rounds the disk a little
  return dy[keep], dx[keep]


def _draw_dots(canvas, rows, cols, colors, radius):
  """Stamps a filled disk per point; fully vectorised over points."""
  if rows.size == 0:
    return
  dy, dx = _disk_offsets(radius)
  yy = (rows[:, None] + dy[None, :]).ravel()
  xx = (cols[:, None] + dx[None, :]).ravel()
  cc = np.repeat(colors, dy.size, axis=0)
  size_y, size_x = canvas.shape[:2]
  inside = (yy >= 0) & (yy < size_y) & (xx >= 0) & (xx < size_x)
  canvas[yy[inside], xx[inside]] = cc[inside]


def _as_xy(points, name):
  """Converts ``points`` (or None) to a float64 ``[N, 2]`` array or raises ValueError."""
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


def _default_extent(points):
  """Square extent around ``points`` with a 15% margin (equal aspect keeps rings round)."""
  finite = points[np.all(np.isfinite(points), axis=1)]
  if finite.shape[0] == 0:
    return (-1.0, 1.0, -1.0, 1.0)
  lo, hi = finite.min(axis=0), finite.max(axis=0)
  center = (lo + hi) / 2.0
  span = max(float((hi - lo).max()), 1e-6)
  # Half-width = half the span plus a margin of 15% of the span per side.
  half = span * (0.5 + 0.15)
  return (center[0] - half, center[0] + half, center[1] - half, center[1] + half)


def _validate_extent(extent):
  """Returns ``extent`` as 4 floats with xmax > xmin and ymax > ymin."""
  try:
    values = tuple(float(v) for v in extent)
  except (TypeError, ValueError) as exc:
    raise ValueError(f"`extent` must be (xmin, xmax, ymin, ymax): {exc}") from exc
  if len(values) != 4 or not all(np.isfinite(values)):
    raise ValueError(f"`extent` must be 4 finite numbers (xmin, xmax, ymin, ymax); got {extent!r}.")
  xmin, xmax, ymin, ymax = values
  if not (xmax > xmin and ymax > ymin):
    raise ValueError(f"`extent` needs xmax > xmin and ymax > ymin; got {extent!r}.")
  return values


def _to_pixels(points, extent, size):
  """Maps data coordinates to integer (row, col); y grows upwards in the image."""
  xmin, xmax, ymin, ymax = extent
  cols = np.rint((points[:, 0] - xmin) / (xmax - xmin) * (size - 1))
  rows = np.rint((ymax - points[:, 1]) / (ymax - ymin) * (size - 1))
  # Clip far-away points to just outside the canvas so the int cast is safe;
  # their dots are then dropped by the bounds check in _draw_dots.
  cols = np.clip(cols, -size, 2 * size).astype(np.int64)
  rows = np.clip(rows, -size, 2 * size).astype(np.int64)
  return rows, cols


def _draw_legend(canvas, num_generators, top, scale=2):
  """Colour swatches labelled G0, G1, ... in a white box in a corner.

  The corner whose area currently holds the fewest non-background pixels is
  used, so the legend hides as little of the data as possible.
  """
  size_y, size_x = canvas.shape[:2]
  swatch = 4 * scale
  row_h = swatch + 2 * scale
  pad = 2 * scale
  margin = 4
  max_rows = max(0, (size_y - top - margin - 2 * pad + row_h - swatch) // row_h)
  shown = min(num_generators, max_rows)
  if shown <= 0:
    return
  truncated = shown < num_generators
  if truncated:
    shown -= 1  # keep the last row for a "+N" note
  labels = [_text_mask(f"G{g}", scale) for g in range(shown)]
  extra = _text_mask(f"+{num_generators - shown}", scale) if truncated else None
  widths = [m.shape[1] for m in labels] + ([extra.shape[1]] if extra is not None else [])
  box_w = pad + swatch + pad + max(widths) + pad
  num_rows = shown + (1 if truncated else 0)
  box_h = 2 * pad + row_h * num_rows - (row_h - swatch)
  if box_w + 2 * margin > size_x:
    return

  corners = [  # (top, left): top-right first so it wins ties
      (top, size_x - box_w - margin),
      (top, margin),
      (size_y - box_h - margin, size_x - box_w - margin),
      (size_y - box_h - margin, margin),
  ]
  ink = [np.count_nonzero(np.any(canvas[y:y + box_h, x:x + box_w] != BACKGROUND, axis=-1))
         for y, x in corners]
  y0, x0 = corners[int(np.argmin(ink))]

  canvas[y0:y0 + box_h, x0:x0 + box_w] = BACKGROUND
  canvas[y0, x0:x0 + box_w] = LEGEND_BORDER
  canvas[y0 + box_h - 1, x0:x0 + box_w] = LEGEND_BORDER
  canvas[y0:y0 + box_h, x0] = LEGEND_BORDER
  canvas[y0:y0 + box_h, x0 + box_w - 1] = LEGEND_BORDER
  text_dy = (swatch - _GLYPH_H * scale) // 2
  text_x = x0 + 2 * pad + swatch
  y = y0 + pad
  for g, label in enumerate(labels):
    canvas[y:y + swatch, x0 + pad:x0 + pad + swatch] = generator_color(g)
    _paint_mask(canvas, label, y + text_dy, text_x, TEXT_COLOR)
    y += row_h
  if extra is not None:
    _paint_mask(canvas, extra, y + text_dy, text_x, TEXT_COLOR)


def render_scatter(real, fake, generator_ids=None, num_generators=None, extent=None,
                   size=400, title=None, point_radius=2, real_radius=1, legend=True):
  """Renders real and generated 2-D samples as an RGB scatter plot.

  Args:
    real: ``[N, 2]`` real samples (or ``None``), drawn as small grey dots
      underneath the generated samples.
    fake: ``[K, 2]`` generated samples (or ``None``).
    generator_ids: optional ``[K]`` integer generator id per fake sample;
      every generator gets its own palette colour (see ``PALETTE``). Without
      ids all fake samples use the first palette colour.
    num_generators: number of generators for the legend; defaults to
      ``max(generator_ids) + 1``.
    extent: ``(xmin, xmax, ymin, ymax)`` in data units. Defaults to a square
      window around the real samples (fake ones if there are no real ones)
      with a 15% margin. Points outside the extent are clipped away.
    size: width and height of the image in pixels.
    title: optional text drawn at the top with a small built-in bitmap font
      (upper-case letters, digits and basic punctuation).
    point_radius: dot radius in pixels for generated samples.
    real_radius: dot radius in pixels for real samples.
    legend: when generator ids are given, draw labelled colour swatches in
      the corner that hides the fewest drawn pixels.

  Returns:
    ``uint8`` array of shape ``[size, size, 3]``.
  """
  if int(size) != size or int(size) < 16:
    raise ValueError(f"`size` must be an integer >= 16; got {size!r}.")
  size = int(size)
  for name, value in (("point_radius", point_radius), ("real_radius", real_radius)):
    if int(value) != value or int(value) < 0:
      raise ValueError(f"`{name}` must be a non-negative integer; got {value!r}.")
  real = _as_xy(real, "real")
  fake = _as_xy(fake, "fake")

  ids = None
  if generator_ids is not None:
    ids = np.asarray(generator_ids)
    if ids.size == 0:
      ids = np.zeros((0,), dtype=np.int64)
    if ids.ndim != 1 or ids.shape[0] != fake.shape[0]:
      raise ValueError(
          f"`generator_ids` must have shape [{fake.shape[0]}] (one id per fake sample); "
          f"got shape {ids.shape}.")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
      raise ValueError(f"`generator_ids` must contain integers; got dtype {ids.dtype}.")
    ids = ids.astype(np.int64)
    if ids.size and ids.min() < 0:
      raise ValueError("`generator_ids` must be non-negative.")
    needed = int(ids.max()) + 1 if ids.size else 0
    if num_generators is None:
      num_generators = needed
    elif int(num_generators) < needed:
      raise ValueError(
          f"`num_generators`={num_generators} but `generator_ids` contains id {needed - 1}.")
    num_generators = int(num_generators)
  elif num_generators is not None:
    raise ValueError("`num_generators` was given without `generator_ids`.")

  if extent is None:
    extent = _default_extent(real if real.shape[0] else fake)
  extent = _validate_extent(extent)

  canvas = np.empty((size, size, 3), dtype=np.uint8)
  canvas[...] = BACKGROUND

  # Axis lines through the origin, when it is inside the window.
  xmin, xmax, ymin, ymax = extent
  origin_rows, origin_cols = _to_pixels(np.zeros((1, 2)), extent, size)
  if xmin <= 0.0 <= xmax:
    canvas[:, origin_cols[0]] = AXIS_COLOR
  if ymin <= 0.0 <= ymax:
    canvas[origin_rows[0], :] = AXIS_COLOR

  real = real[np.all(np.isfinite(real), axis=1)]
  rows, cols = _to_pixels(real, extent, size)
  _draw_dots(canvas, rows, cols, np.broadcast_to(REAL_COLOR, (real.shape[0], 3)), real_radius)

  finite = np.all(np.isfinite(fake), axis=1)
  fake = fake[finite]
  if ids is not None:
    ids = ids[finite]
    colors = PALETTE[ids % len(PALETTE)]
    # Draw in a fixed shuffled order: overlapping generators then show up
    # as a mix instead of the highest id always hiding the others.
    order = np.random.default_rng(0).permutation(fake.shape[0])
    fake, colors = fake[order], colors[order]
  else:
    colors = np.broadcast_to(PALETTE[0], (fake.shape[0], 3))
  rows, cols = _to_pixels(fake, extent, size)
  _draw_dots(canvas, rows, cols, colors, point_radius)

  top = 4
  if title:
    mask = _text_mask(title, 2)
    left = max(4, (size - mask.shape[1]) // 2)
    # A white band behind the title keeps it legible over dense samples.
    canvas[top - 2:top + mask.shape[0] + 2, left - 2:left + mask.shape[1] + 2] = BACKGROUND
    _paint_mask(canvas, mask, top, left, TEXT_COLOR)
    top += mask.shape[0] + 6
  if legend and ids is not None and num_generators > 0:
    _draw_legend(canvas, num_generators, top)
  return canvas


def side_by_side(images, pad=8):
  """Concatenates equal-height ``[H, W, C]`` images left to right.

  ``pad`` white columns are inserted between neighbouring images (not at the
  outer edges), so the result is ``sum(W) + pad * (len(images) - 1)`` wide.
  """
  images = [np.asarray(im) for im in images]
  if not images:
    raise ValueError("`images` must contain at least one image.")
  if int(pad) != pad or pad < 0:
    raise ValueError(f"`pad` must be a non-negative integer; got {pad!r}.")
  first = images[0]
  for i, im in enumerate(images):
    if im.ndim != 3:
      raise ValueError(f"`images[{i}]` must have shape [H, W, C]; got {im.shape}.")
    if im.shape[0] != first.shape[0] or im.shape[2] != first.shape[2]:
      raise ValueError(
          f"`images` must share height and channels; images[0] is {first.shape}, "
          f"images[{i}] is {im.shape}.")
  dtype = np.result_type(*images)
  white = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
  gap = np.full((first.shape[0], int(pad), first.shape[2]), white, dtype=dtype)
  parts = []
  for i, im in enumerate(images):
    if i:
      parts.append(gap)
    parts.append(im.astype(dtype, copy=False))
  return np.concatenate(parts, axis=1)


def save_png(image, path):
  """Writes a ``uint8 [H, W, C]`` image to ``path`` as PNG (any tf.io.gfile path).

  Parent directories are created. The bytes go to a temporary sibling file
  that is renamed into place, so a failure never leaves a truncated PNG
  behind. Returns ``path``.
  """
  import tensorflow as tf  # lazy: rendering alone should not need TensorFlow

  array = np.asarray(image)
  if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
    raise ValueError(f"`image` must have shape [H, W, 1|3|4]; got {array.shape}.")
  if array.dtype != np.uint8:
    raise ValueError(f"`image` must be uint8; got {array.dtype}.")
  # Encode before touching the filesystem so encoding errors create no files.
  data = tf.io.encode_png(array).numpy()
  path = os.fspath(path)
  parent = os.path.dirname(path)
  if parent:
    tf.io.gfile.makedirs(parent)
  tmp_path = f"{path}.tmp-{uuid.uuid4().hex}"
  try:
    with tf.io.gfile.GFile(tmp_path, "wb") as handle:
      handle.write(data)
    tf.io.gfile.rename(tmp_path, path, overwrite=True)
  except BaseException:
    if tf.io.gfile.exists(tmp_path):
      tf.io.gfile.remove(tmp_path)
    raise
  return path


def image_summary_tensor(image):
  """Returns a ``uint8`` tensor ``[1, H, W, C]`` ready for ``tf.summary.image``.

  Accepts a single ``[H, W, C]`` image or an already batched ``[1, H, W, C]``.
  """
  import tensorflow as tf  # lazy, see save_png

  array = np.asarray(image)
  if array.ndim == 3:
    array = array[None]
  if array.ndim != 4 or array.shape[0] != 1 or array.shape[3] not in (1, 3, 4):
    raise ValueError(f"`image` must have shape [H, W, C] or [1, H, W, C]; got {array.shape}.")
  if array.dtype != np.uint8:
    raise ValueError(f"`image` must be uint8; got {array.dtype}.")
  return tf.convert_to_tensor(array, dtype=tf.uint8)
