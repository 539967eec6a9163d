"""Writing files so that a crash or a full disk never leaves a half-written one.

Every file the package writes goes through `atomic_write`: the content goes to a
temporary file beside the destination, which is renamed over it only once complete.
Paths go through `tf.io.gfile`, so run directories may live on any file system
TensorFlow supports (local disk, GCS, ...).
"""

import contextlib
import io
import json
import os
import uuid

import numpy as np
import tensorflow as tf

from tf_stackelberg.common.jsonable import to_jsonable


@contextlib.contextmanager
def atomic_write(path, mode="w"):
  """Context manager yielding a file object whose content replaces `path` on exit.

  If the body raises, the destination is left as it was and the temporary file is
  removed.
  """
  parent = os.path.dirname(path)
  if parent:
    tf.io.gfile.makedirs(parent)
  tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
  try:
    with tf.io.gfile.GFile(tmp, mode) as f:
      yield f
    tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)


def write_json(path, value):
  """Writes `value` (numpy values and tuples allowed) as strict, indented JSON."""
  with atomic_write(path) as f:
    json.dump(to_jsonable(value), f, indent=2, allow_nan=False)
    f.write("\n")


def write_bytes(path, data):
  """Writes `data` (bytes) to `path` atomically."""
  with atomic_write(path, "wb") as f:
    f.write(data)


def write_npz(path, **arrays):
  """Writes numpy arrays as an `.npz` archive atomically."""
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  write_bytes(path, buffer.getvalue())


def read_json(path):
  """Reads a JSON file; `ValueError` names the file when it is not valid JSON."""
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not valid JSON ({e})") from e
