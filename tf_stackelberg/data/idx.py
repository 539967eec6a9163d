"""Reads the IDX files of MNIST and Fashion-MNIST (gzip or raw), checking them.

IDX is a big-endian header (a magic number whose low byte is the number of axes,
then one uint32 size per axis) followed by raw uint8 values. A reader that trusted
the header would hand a truncated download to training as a silently shorter
dataset; this one checks the magic, the sizes against the file length and the gzip
stream, and raises `DataError` naming the file.
"""

import gzip
import os
import struct
import zlib

import numpy as np

from tf_stackelberg.common.errors import DataError

IMAGES_MAGIC = 2051  # uint8 values, 3 axes: count, rows, cols
LABELS_MAGIC = 2049  # uint8 values, 1 axis: count


def _read_bytes(path):
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except FileNotFoundError as e:
    raise DataError(f"{path} does not exist") from e
  except OSError as e:
    raise DataError(f"cannot read {path}: {e.strerror or e}") from e
  if raw[:2] != b"\x1f\x8b":  # not gzip: a raw IDX file
    return raw
  try:
    return gzip.decompress(raw)
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f"{path} is a damaged gzip file ({e}); replace it with a good "
                    "copy") from e


def read_idx(path, expected_magic):
  """The array an IDX file holds, shape from its header, dtype uint8.

  Args:
    path: the file (`.gz` or raw).
    expected_magic: `IMAGES_MAGIC` or `LABELS_MAGIC`.

  Raises:
    DataError: the file is missing, unreadable, not gzip when it claims to be, has
      another magic number, or holds fewer or more bytes than its header declares.
  """
  data = _read_bytes(path)
  name = os.path.basename(path)
  if len(data) < 4:
    raise DataError(f"{path} is truncated: {len(data)} bytes, not even an IDX header")
  (magic,) = struct.unpack(">I", data[:4])
  if magic != expected_magic:
    raise DataError(f"{path} is not an IDX file of "
                    f"{'images' if expected_magic == IMAGES_MAGIC else 'labels'}: "
                    f"magic number {magic}, expected {expected_magic}")
  num_axes = magic & 0xFF
  header = 4 + 4 * num_axes
  if len(data) < header:
    raise DataError(f"{path} is truncated inside its header")
  shape = struct.unpack(f">{num_axes}I", data[4:header])
  expected = header + int(np.prod(shape))
  if len(data) != expected:
    problem = "truncated" if len(data) < expected else "longer than its header says"
    raise DataError(f"{path} is {problem}: the header of {name} declares shape "
                    f"{'x'.join(map(str, shape))} ({expected:,} bytes), the file holds "
                    f"{len(data):,} bytes")
  return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_split(images_path, labels_path):
  """(images uint8 `[N, rows, cols]`, labels uint8 `[N]`) of one split, checked to
  have the same count and labels 0-9."""
  images = read_idx(images_path, IMAGES_MAGIC)
  labels = read_idx(labels_path, LABELS_MAGIC)
  if len(images) != len(labels):
    raise DataError(f"{images_path} holds {len(images):,} images but {labels_path} "
                    f"holds {len(labels):,} labels")
  if labels.size and labels.max() > 9:
    raise DataError(f"{labels_path} holds label {int(labels.max())}; labels are 0-9")
  return images, labels
