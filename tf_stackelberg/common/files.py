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

from tf_stackelberg.common.errors import ConfigError, StorageError, storage_reason
from tf_stackelberg.common.jsonable import to_jsonable


@contextlib.contextmanager
def storage_errors(path):
  """Turns a storage failure (full disk, no permission, ...) inside the body into a
  `StorageError` naming `path`; other errors pass unchanged."""
  try:
    yield
  except (OSError, tf.errors.OpError) as e:
    reason = storage_reason(e)
    if reason is None:
      raise
    raise StorageError(f"cannot write {path}: {reason}") from e


# Staging folders of `staged_directory` that exist now, for a forced exit to remove
# (`console.interrupt`).
_STAGING = set()


def remove_staging_directories():
  """Removes every staging folder of `staged_directory` still in use (best effort)."""
  for path in list(_STAGING):
    _remove_quietly(path)
    _STAGING.discard(path)


def _remove_quietly(path):
  try:
    if tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
  except (OSError, tf.errors.OpError):
    pass  # best effort: the original error matters more


@contextlib.contextmanager
def atomic_write(path, mode="w"):
  """Context manager yielding a file object whose content replaces `path` on exit.

  If the body raises, the destination is left as it was and the temporary file is
  removed. Storage failures raise `StorageError` naming `path`.
  """
  parent = os.path.dirname(path)
  tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
  with storage_errors(path):
    if parent:
      tf.io.gfile.makedirs(parent)
    try:
      with tf.io.gfile.GFile(tmp, mode) as f:
        yield f
      tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
      _remove_quietly(tmp)


def _nearest_existing(path):
  """`path` or its nearest ancestor that exists."""
  while path and not tf.io.gfile.exists(path):
    parent = os.path.dirname(path.rstrip("/"))
    if parent == path:
      break
    path = parent
  return path or "."


def check_writable_directory(path, flag):
  """Checks, without creating anything, that directory `path` can be created (if
  needed) and written: a probe file is written and removed in `path`, or in its
  nearest existing ancestor.

  Called before any long work, so that a bad destination fails in a second, not after
  training or sampling.

  Raises:
    ConfigError: `path` is empty, or it or an ancestor is a file.
    StorageError: the directory cannot be written (permissions, read-only or full
      file system).
  """
  if not path:
    raise ConfigError(f"{flag} must name a directory, got an empty value")
  existing = _nearest_existing(path)
  if not tf.io.gfile.isdir(existing):
    what = "is a file" if existing == path else f"has a file as a parent ({existing})"
    raise ConfigError(f"{flag}={path} {what}, not a directory")
  probe = os.path.join(existing, f".write-test-{uuid.uuid4().hex[:8]}")
  try:
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("ok")
  except (OSError, tf.errors.OpError) as e:
    reason = storage_reason(e) or str(e).strip().splitlines()[0].split("; ")[-1]
    raise StorageError(f"{flag}={path} is not writable ({existing}: {reason})") from e
  finally:
    _remove_quietly(probe)


def is_empty_directory(path):
  return tf.io.gfile.isdir(path) and not tf.io.gfile.listdir(path)


def free_name(path):
  """`path` with the first suffix `_2`, `_3`, ... that names nothing yet (a file's
  extension dropped: the output is a directory)."""
  stem = os.path.splitext(path)[0] if not tf.io.gfile.isdir(path) else path
  number = 2
  while tf.io.gfile.exists(f"{stem}_{number}"):
    number += 1
  return f"{stem}_{number}"


@contextlib.contextmanager
def staged_directory(path, flag):
  """Yields a temporary directory beside `path` that becomes `path` when the body
  succeeds, so that `path` appears complete or not at all (a full disk or a crash
  leaves no half-written output that would block a retry).

  Raises:
    ConfigError: `path` already exists and is not empty (outputs are never replaced).
    StorageError: the temporary directory cannot be written or renamed.
  """
  path = path.rstrip("/")
  if tf.io.gfile.exists(path) and not is_empty_directory(path):
    # Never advise removing it: it may be a run's own file or folder.
    what = "a directory that holds files" if tf.io.gfile.isdir(path) else "a file"
    raise ConfigError(f"{flag}={path} is {what}; outputs go into a new directory and "
                      f"never replace anything: choose one that does not exist, e.g. "
                      f"{flag}={free_name(path)}")
  check_writable_directory(path, flag)
  tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
  _STAGING.add(tmp)
  try:
    with storage_errors(path):
      tf.io.gfile.makedirs(tmp)
    yield tmp
    with storage_errors(path):
      if is_empty_directory(path):
        tf.io.gfile.rmtree(path)
      tf.io.gfile.rename(tmp, path)
  finally:
    _remove_quietly(tmp)
    _STAGING.discard(tmp)


def write_json(path, value):
  """Writes `value` (numpy values and tuples allowed) as strict, indented JSON."""
  with atomic_write(path) as f:
    json.dump(to_jsonable(value), f, indent=2, allow_nan=False)
    f.write("\n")


def write_bytes(path, data):
  """Writes `data` (bytes) to `path` atomically."""
  with atomic_write(path, "wb") as f:
    f.write(data)


class _WriteOnly:
  """A file seen without `seek` and `tell`: `zipfile` then streams its members
  instead of seeking back (which a GFile open for writing refuses)."""

  def __init__(self, f):
    self._f = f

  def write(self, data):
    data = bytes(data)
    self._f.write(data)
    return len(data)

  def read(self, *unused):  # numpy.savez takes objects with `read` as files
    raise io.UnsupportedOperation("write-only")

  def flush(self):
    self._f.flush()


def write_npz(path, **arrays):
  """Writes numpy arrays as an `.npz` archive atomically, streamed to the file (a
  4 GB array is not copied into memory first)."""
  with atomic_write(path, "wb") as f:
    np.savez(_WriteOnly(f), **arrays)


def read_json(path):
  """Reads a JSON file; `ValueError` names the file when it is not valid JSON."""
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not valid JSON ({e})") from e
