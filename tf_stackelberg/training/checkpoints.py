"""The checkpoints of a run directory: found on disk, checked, restored newest first.

`MODEL_DIR/checkpoints/` holds `ckpt-N.index` and `ckpt-N.data-*` for step N and the
state file `checkpoint` that `tf.train.CheckpointManager` keeps. Each checkpoint also
stores the run-defining settings (`Config.run_settings()`, as JSON under
`SETTINGS_NAME`), so that it describes itself when `flags.json` is lost.

A checkpoint whose files are damaged is skipped for the next older one. TensorFlow
2.21 checks the CRC32C of every tensor it reads and of every block of the index, so
damage is detected rather than restored as garbage:

```none
data file truncated         IndexError "Read less bytes than requested"
bytes changed in the data   DataLossError "Checksum does not match" from the restore
                            op; OpError (UNKNOWN) "The length checksum does not match"
                            from the reader of a string tensor (the stored settings)
index truncated             OpError "not an sstable (bad magic number)"
bytes changed in the index  OpError "... block checksum mismatch" (only the padding
                            of its footer may change unnoticed: it is never read)
index deleted               NotFoundError "Failed to find any matching files"
data file deleted           OpError "... No such file or directory"
```

The missing files are reported before TensorFlow reads anything. A failed restore may
already have assigned part of the variables (a damaged save counter, restored last in
an op of its own, fails after every weight was assigned); the next checkpoint restores
every variable again, since each restore must match every object.

Training repairs the directory: the files of a skipped checkpoint move into
`checkpoints/damaged/` (kept, and clear of a new checkpoint of the same step), and the
state file is rewritten to list the checkpoints that remain. Evaluation, export and
sampling only read.
"""

import collections
import json
import os
import re

import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError

CHECKPOINT_SUBDIR = "checkpoints"
DAMAGED_SUBDIR = "damaged"
STATE_FILE = "checkpoint"
SETTINGS_NAME = "run_settings"
SETTINGS_KEY = f"{SETTINGS_NAME}/.ATTRIBUTES/VARIABLE_VALUE"

_NAME = re.compile(r"^ckpt-(\d+)$")
# Failures of the storage rather than of the files: never a reason to skip one.
_TRANSIENT = (tf.errors.PermissionDeniedError, tf.errors.UnavailableError,
              tf.errors.DeadlineExceededError, tf.errors.ResourceExhaustedError,
              tf.errors.CancelledError, tf.errors.AbortedError,
              tf.errors.UnauthenticatedError)

Restored = collections.namedtuple("Restored", ["prefix", "skipped", "rebuilt_state",
                                               "found"])
Restored.__doc__ = """The outcome of `restore_newest`.

Attributes:
  prefix: the checkpoint restored (`.../ckpt-N`).
  skipped: `(prefix, reason)` of each newer checkpoint that did not restore.
  rebuilt_state: the state file was missing or listed none, and the checkpoints were
    found on disk.
  found: every checkpoint found, newest first.
"""


class DamagedCheckpointError(Exception):
  """A checkpoint's files cannot be read; the message says what is wrong."""


class NoUsableCheckpointError(ConfigError):
  """Checkpoints exist but none restores; the message gives each one's reason."""


def directory_of(model_dir):
  """The checkpoint directory of a run directory."""
  return os.path.join(model_dir, CHECKPOINT_SUBDIR)


def number(prefix):
  """N of `.../ckpt-N` (None for another name)."""
  match = _NAME.match(os.path.basename(prefix))
  return int(match.group(1)) if match else None


def _listed(directory):
  """The prefixes the state file lists (empty if it is missing or unreadable)."""
  try:
    state = tf.train.get_checkpoint_state(directory)
  except ValueError:  # a state file that names no latest checkpoint (e.g. empty)
    return []
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  # TensorFlow has already joined relative names onto `directory`; an absolute path
  # names where the run was written, which a moved or copied run no longer is. The
  # name alone, in `directory`, is right in every case.
  return [os.path.join(directory, os.path.basename(p)) for p in paths if p]


def find(directory):
  """The checkpoints in `directory`, newest first, and whether the state file lists
  any.

  The union of the state file's list and the `ckpt-N.index` files on disk: a missing
  state file hides nothing, nor does a checkpoint written just before a crash that
  left the state file behind.
  """
  listed = [p for p in _listed(directory) if number(p) is not None]
  on_disk = [os.path.join(directory, name[:-len(".index")])
             for name in _names(directory)
             if name.endswith(".index") and number(name[:-len(".index")]) is not None]
  by_number = {number(p): p for p in on_disk}
  by_number.update({number(p): p for p in listed})
  return [by_number[n] for n in sorted(by_number, reverse=True)], bool(listed)


def settings_variable(run_settings):
  """The variable that carries `run_settings` (a dict) inside every checkpoint: their
  JSON in a one-element string vector, which a checkpoint reader returns as a numpy
  array like every other tensor (a scalar string would come back as bytes)."""
  return tf.Variable([json.dumps(run_settings, sort_keys=True)], dtype=tf.string,
                     trainable=False, name=SETTINGS_NAME)


def _names(directory):
  return tf.io.gfile.listdir(directory) if tf.io.gfile.isdir(directory) else []


def _files(prefix):
  """`([index path] or [], [data paths], name)` of checkpoint `prefix` on disk."""
  directory, name = os.path.split(prefix)
  names = _names(directory)
  data = sorted(os.path.join(directory, n) for n in names
                if n.startswith(f"{name}.data-"))
  index = [os.path.join(directory, f"{name}.index")] if f"{name}.index" in names else []
  return index, data, name


def _check_files(prefix):
  index, data, name = _files(prefix)
  if not index and not data:
    raise DamagedCheckpointError("its files are missing")
  if not index:
    raise DamagedCheckpointError(f"{name}.index is missing")
  if not data:
    raise DamagedCheckpointError("its data file is missing")


def describe_error(error):
  """A short reason for a read error of a checkpoint."""
  text = str(error)
  if isinstance(error, IndexError) or "Read less bytes" in text:
    return "data file truncated (read less bytes than requested)"
  if "checksum does not match" in text.lower():
    return "data file corrupted (checksum mismatch)"
  if "sstable" in text or "block checksum" in text:
    return "index file damaged (" + text.rsplit(": ", 1)[-1].strip() + ")"
  if "No such file" in text or isinstance(error, tf.errors.NotFoundError):
    return "a file is missing"
  # The first line, without the op name and node prefix TensorFlow adds.
  line = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", text.strip().splitlines()[0]).strip()
  return f"{type(error).__name__}: {line[:160]}"


def _guard(fn, *args):
  """`fn(*args)`, its read errors turned into `DamagedCheckpointError`."""
  try:
    return fn(*args)
  except _TRANSIENT:
    raise
  except (tf.errors.OpError, IndexError) as e:
    raise DamagedCheckpointError(describe_error(e)) from e


def read_settings(prefix):
  """The run settings stored in checkpoint `prefix`; None for a checkpoint written
  before they were stored.

  Raises:
    DamagedCheckpointError: the checkpoint cannot be read.
  """
  _check_files(prefix)
  reader = _guard(tf.train.load_checkpoint, prefix)
  if not reader.has_tensor(SETTINGS_KEY):
    return None
  value = _guard(reader.get_tensor, SETTINGS_KEY)
  try:
    text = value if isinstance(value, bytes) else value.reshape(-1)[0]
    settings = json.loads(text.decode("utf-8"))
  except (ValueError, IndexError, AttributeError) as e:
    raise DamagedCheckpointError(f"its stored settings are not valid JSON ({e})") from e
  if not isinstance(settings, dict):
    raise DamagedCheckpointError("its stored settings are not a JSON object")
  return settings


def stored_settings(directory):
  """`(prefix, settings)` of the newest checkpoint in `directory` whose settings read;
  None when no checkpoint stores them."""
  for prefix in find(directory)[0]:
    try:
      settings = read_settings(prefix)
    except DamagedCheckpointError:
      continue
    if settings is not None:
      return prefix, settings
  return None


def move_aside(prefix):
  """Moves the files of checkpoint `prefix` into `damaged/` beside it, under a name no
  earlier damaged checkpoint took; returns the destination prefix."""
  directory, name = os.path.split(prefix)
  damaged = os.path.join(directory, DAMAGED_SUBDIR)
  tf.io.gfile.makedirs(damaged)
  index, data, _ = _files(prefix)
  taken = {n.split(".", 1)[0] for n in _names(damaged)}
  target, suffix = name, 1
  while target in taken:
    suffix += 1
    target = f"{name}_{suffix}"
  target = os.path.join(damaged, target)
  for path in index + data:
    tf.io.gfile.rename(path, target + path[len(prefix):])
  return target


def _mtime(prefix):
  try:
    return tf.io.gfile.stat(f"{prefix}.index").mtime_nsec / 1e9
  except tf.errors.OpError:
    return None


def write_state(directory, prefixes):
  """Writes the state file listing `prefixes` (oldest first; the last is the latest)
  by name, with their files' times, so that `tf.train.CheckpointManager` keeps and
  deletes them as it would have.

  The file is the text form of TF's `CheckpointState` proto, which
  `tf.train.get_checkpoint_state` reads; it is written atomically.
  """
  names = [os.path.basename(p) for p in prefixes]
  times = [_mtime(p) for p in prefixes]
  times = [t if t is not None else max(filter(None, times), default=0.0)
           for t in times]
  preserved = min(times, default=0.0) - 1.0
  try:
    previous = tf.train.get_checkpoint_state(directory)
  except ValueError:
    previous = None
  if previous is not None and previous.last_preserved_timestamp:
    preserved = min(preserved, previous.last_preserved_timestamp)
  lines = [f"model_checkpoint_path: {json.dumps(names[-1])}"]
  lines += [f"all_model_checkpoint_paths: {json.dumps(n)}" for n in names]
  lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in times]
  lines.append(f"last_preserved_timestamp: {preserved!r}")
  with files.atomic_write(os.path.join(directory, STATE_FILE)) as f:
    f.write("\n".join(lines) + "\n")


def restore_newest(directory, restore_fn, check_settings, repair=False, keep=None):
  """Restores the newest checkpoint of `directory` that restores.

  Args:
    directory: the checkpoint directory.
    restore_fn: `restore_fn(prefix)` restores every object from `prefix`.
    check_settings: `check_settings(prefix, settings)` raises `ConfigError` when the
      settings a checkpoint stores (None for one that stores none) are not the run's.
    repair: move the skipped checkpoints' files into `damaged/` and rewrite the state
      file (training); otherwise nothing is changed on disk.
    keep: how many checkpoints a rebuilt state file lists at most (the newest); the
      older ones stay on disk, out of the reach of the manager's deletions.

  Returns:
    a `Restored`, or None when there is no checkpoint.

  Raises:
    NoUsableCheckpointError: no checkpoint restores (nothing is moved then).
    ConfigError: a checkpoint stores other settings, or `restore_fn` refused it.
  """
  prefixes, listed = find(directory)
  if not prefixes:
    return None
  skipped = []
  for prefix in prefixes:
    try:
      check_settings(prefix, read_settings(prefix))
      _guard(restore_fn, prefix)
    except DamagedCheckpointError as e:
      skipped.append((prefix, str(e)))
      continue
    break
  else:
    reasons = "; ".join(f"{os.path.basename(p)}: {r}" for p, r in skipped)
    raise NoUsableCheckpointError(
        f"no checkpoint in {directory} restores ({reasons}); nothing was moved or "
        f"changed. {_remedy(r for _, r in skipped)}")
  if repair:
    for damaged, _ in skipped:
      move_aside(damaged)
    _repair_state(directory, prefixes, number(prefix), keep)
  return Restored(prefix, skipped, not listed, prefixes)


def _remedy(reasons):
  """What to try when no checkpoint restores, from the reasons each one failed."""
  reasons = list(reasons)
  if all("missing" in r for r in reasons):
    return ("If the run was copied or moved, copy its checkpoint files "
            "(ckpt-N.index and ckpt-N.data-*) into this directory too")
  if any("truncated" in r or "corrupted" in r or "damaged" in r for r in reasons):
    return ("The files are incomplete or changed: copy them again from where the run "
            "was made, or restore them from a backup")
  return "Check the files' permissions and copy them again from where the run was made"


def _repair_state(directory, prefixes, restored, keep):
  """Rewrites the state file to list the checkpoints up to the restored one: those it
  listed, or (when it listed none) the newest `keep` on disk."""
  state = [number(p) for p in _listed(directory)]
  kept = sorted(n for n in map(number, prefixes)
                if n <= restored and (n in state or n == restored or not state))
  if not state and keep:
    kept = kept[-keep:]
  if kept != state:
    by_number = {number(p): p for p in prefixes}
    write_state(directory, [by_number[n] for n in kept])
