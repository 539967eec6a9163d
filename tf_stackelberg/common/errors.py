"""Errors that the command line reports as one line and an exit status.

* `ConfigError` (exit 2): a setting or an input file is invalid.
* `DataError` (exit 2): a dataset is missing, truncated or corrupt; the message says
  where data was looked for and how to provide it.
* `StorageError` (exit 1): the environment refused a read or a write (permissions, a
  full disk, a read-only file system).
* `NetworkError` (exit 1, a `StorageError`): a service the run needs (a TPU, the
  other workers of a cluster, a download host) did not answer in time, or a port it
  needs is taken.
"""

import errno
import sys


class ConfigError(ValueError):
  """A setting or an input file is invalid; the message names the flag or file."""


class DataError(ConfigError):
  """A dataset is missing or damaged; the message names the files and the remedy."""


class StorageError(RuntimeError):
  """A file or directory cannot be written or read; the message names it and why."""


class NetworkError(StorageError):
  """A network service did not answer, or a port is taken; the message names it,
  what was tried and for how long."""


# errno values that mean "the storage refused", not "the program is wrong".
_STORAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT,
                   errno.EIO, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT}
# Messages of TensorFlow's file-system errors, which carry no errno.
_STORAGE_MESSAGES = ("No space left on device", "Read-only file system",
                     "Permission denied", "Disk quota exceeded", "Not a directory",
                     "Is a directory")


def storage_reason(error):
  """A short reason if `error` is a storage failure (OSError or TF file-system error),
  else None."""
  if isinstance(error, OSError) and error.errno in _STORAGE_ERRNOS:
    return error.strerror or str(error)
  # TensorFlow is not imported here (the flags and `--help` load without it); an
  # error of TensorFlow's exists only once TensorFlow is loaded.
  tf = sys.modules.get("tensorflow")
  kinds = (OSError,) + ((tf.errors.OpError,) if tf is not None else ())
  if isinstance(error, kinds):
    message = getattr(error, "message", None) or str(error)
    for text in _STORAGE_MESSAGES:
      if text in message:
        return text
  if tf is not None and isinstance(error, tf.errors.PermissionDeniedError):
    return "Permission denied"
  return None
