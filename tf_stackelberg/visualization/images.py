"""Image arrays: tiling, side-by-side panels, PNG files and TensorBoard tensors.

Tiling is plain numpy; TensorFlow encodes PNG files and builds summary tensors.
"""

import os

import numpy as np
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.visualization import colors

__all__ = ["image_grid", "side_by_side", "save_png", "image_summary_tensor"]


def _check_count(value, name, minimum):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
  return int(value)


def _to_uint8(images, value_range):
  """Maps images from `value_range` to uint8 (uint8 input is kept as it is)."""
  if images.dtype == np.uint8:
    return images
  if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
    raise ValueError(f"`images` must be numeric; got dtype {images.dtype}.")
  try:
    low, high = (float(v) for v in value_range)
  except (TypeError, ValueError) as exc:
    raise ValueError(f"`value_range` must be (low, high); got {value_range!r}.") from exc
  if not (np.isfinite(low) and np.isfinite(high) and high > low):
    raise ValueError(f"`value_range` needs finite low < high; got {value_range!r}.")
  scaled = (images.astype(np.float64) - low) / (high - low)
  scaled = np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0)
  return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def image_grid(images, value_range=(-1.0, 1.0), pad=2, scale=1, color_bar=4):
  """Tiles per-generator samples: row `k` shows generator `k`'s images.

  Args:
    images: `[K, N, H, W, C]` array, `N` samples of `H x W` images with `C`
      channels (1 or 3) for each of `K` generators. Float (or integer) values
      are mapped from `value_range` to 0..255 and clipped; uint8 is used as is.
    value_range: `(low, high)` of the input values: `(-1, 1)` for tanh
      outputs (the default), `(0, 1)` for sigmoid outputs.
    pad: white pixels between tiles and around the grid.
    scale: integer upscaling factor (nearest neighbour), for tiny images.
    color_bar: width in pixels of a strip in generator `k`'s colour
      (`colors.generator_color(k)`) left of row `k`, matching the scatter
      plots; 0 leaves it out.

  Returns:
    `uint8 [H', W', 3]` image (grey-scale input is repeated over RGB), with
    `H' = pad + K * (scale * H + pad)` and
    `W' = pad + (color_bar + pad if color_bar else 0) + N * (scale * W + pad)`.

  Raises:
    ValueError: malformed images or arguments.
  """
  images = np.asarray(images)
  if images.ndim != 5 or images.shape[-1] not in (1, 3):
    raise ValueError(
        f"`images` must have shape [K, N, H, W, C] with C in (1, 3); got {images.shape}.")
  if 0 in images.shape:
    raise ValueError(f"`images` must not be empty; got shape {images.shape}.")
  pad = _check_count(pad, "pad", 0)
  scale = _check_count(scale, "scale", 1)
  color_bar = _check_count(color_bar, "color_bar", 0)
  tiles = _to_uint8(images, value_range)
  if tiles.shape[-1] == 1:
    tiles = np.repeat(tiles, 3, axis=-1)
  if scale > 1:
    tiles = np.repeat(np.repeat(tiles, scale, axis=2), scale, axis=3)
  k, n, h, w, _ = tiles.shape
  left = pad + (color_bar + pad if color_bar else 0)
  out = np.empty((pad + k * (h + pad), left + n * (w + pad), 3), dtype=np.uint8)
  out[...] = colors.BACKGROUND
  for row in range(k):
    top = pad + row * (h + pad)
    if color_bar:
      out[top:top + h, pad:pad + color_bar] = colors.generator_color(row)
    for col in range(n):
      x = left + col * (w + pad)
      out[top:top + h, x:x + w] = tiles[row, col]
  return out


def side_by_side(images, pad=8):
  """Concatenates equal-height `[H, W, C]` images left to right.

  `pad` white columns are inserted between neighbouring images (not at the
  outer edges), so the result is `sum(W) + pad * (len(images) - 1)` wide.
  """
  images = [np.asarray(im) for im in images]
  if not images:
    raise ValueError("`images` must contain at least one image.")
  pad = _check_count(pad, "pad", 0)
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
  gap = np.full((first.shape[0], pad, first.shape[2]), white, dtype=dtype)
  parts = []
  for i, im in enumerate(images):
    if i:
      parts.append(gap)
    parts.append(im.astype(dtype, copy=False))
  return np.concatenate(parts, axis=1)


def _check_image(array, name="image"):
  if array.dtype != np.uint8:
    raise ValueError(f"`{name}` must be uint8; got {array.dtype}.")
  if array.shape[-3] == 0 or array.shape[-2] == 0:
    raise ValueError(f"`{name}` must not be empty; got shape {array.shape}.")


def save_png(image, path):
  """Writes a `uint8 [H, W, C]` image (C in 1, 3, 4) to `path` as PNG.

  The PNG is encoded before anything touches the file system (so a bad image
  creates no file) and written atomically: `path` is replaced only once the
  whole file is written, and no temporary file is left behind on failure.
  Parent directories are created; any `tf.io.gfile` path works. The encoding
  has no metadata, so equal images give byte-identical files.

  Returns:
    `path` as a string.
  """
  array = np.asarray(image)
  if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
    raise ValueError(f"`image` must have shape [H, W, 1|3|4]; got {array.shape}.")
  _check_image(array)
  data = tf.io.encode_png(array).numpy()
  path = os.fspath(path)
  files.write_bytes(path, data)
  return path


def image_summary_tensor(image):
  """Returns a `uint8` tensor `[1, H, W, C]` ready for `tf.summary.image`.

  Accepts a single `[H, W, C]` image or an already batched `[1, H, W, C]`.
  """
  array = np.asarray(image)
  if array.ndim == 3:
    array = array[None]
  if array.ndim != 4 or array.shape[0] != 1 or array.shape[3] not in (1, 3, 4):
    raise ValueError(f"`image` must have shape [H, W, C] or [1, H, W, C]; got {array.shape}.")
  _check_image(array)
  return tf.convert_to_tensor(array, dtype=tf.uint8)
