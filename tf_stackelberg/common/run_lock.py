"""One writer per run directory: `DIRECTORY/.lock` names the process that holds it.

The lock file is created atomically (`O_CREAT | O_EXCL`) and holds JSON: the pid, the
host, the process's start time (field 22 of `/proc/PID/stat`, where there is one), the
boot id and the command. It is removed when the holder leaves its `with` block, also
on an exception or Ctrl-C. A process killed outright (SIGKILL, a crash, a power cut)
leaves it behind: the next process on the same host sees that the pid is dead, or
that it now belongs to another process (another start time or boot), and takes the
lock over. A lock held on another host cannot be checked from here and counts as held.

Paths with a URL scheme (`gs://...`) are not locked: object stores offer no exclusive
create, so `RunLock` does nothing there.
"""

import contextlib
import datetime
import errno
import fcntl
import functools
import json
import os
import socket
import sys
import time
import uuid

from tf_stackelberg.common.errors import ConfigError

LOCK_FILE = ".lock"
# A lock file is written right after it is created: how long a reader waits for it.
_READ_WAIT_SECONDS = 2.0


class RunLockedError(ConfigError):
  """Another live process holds the lock of the directory; the message names it."""


def _read_text(path):
  try:
    with open(path) as f:
      return f.read()
  except OSError:
    return None


def process_start_ticks(pid):
  """The start time of process `pid` in clock ticks after boot (field 22 of
  `/proc/PID/stat`), or None where there is no such file."""
  text = _read_text(f"/proc/{pid}/stat")
  if not text:
    return None
  # The command name (field 2) is in parentheses and may itself hold spaces.
  fields = text[text.rindex(")") + 2:].split()
  return int(fields[19])  # field 22 of the whole line


def _boot_id():
  text = _read_text("/proc/sys/kernel/random/boot_id")
  return text.strip() if text else None


def _started(pid):
  """The process's start as local ISO time (the lock's creation where unknown)."""
  ticks, stat = process_start_ticks(pid), _read_text("/proc/stat")
  if ticks is not None and stat:
    boot = next((int(line.split()[1]) for line in stat.splitlines()
                 if line.startswith("btime ")), None)
    if boot is not None:
      seconds = boot + ticks / os.sysconf("SC_CLK_TCK")
      return datetime.datetime.fromtimestamp(seconds).isoformat(timespec="seconds")
  return datetime.datetime.now().isoformat(timespec="seconds")


def _command():
  text = _read_text("/proc/self/cmdline")
  args = text.rstrip("\0").split("\0") if text else [sys.executable] + sys.argv
  return " ".join(args)


def _pid_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # alive, owned by another user
    return True
  return True


def stale_reason(holder):
  """Why the lock described by `holder` (its JSON) is stale, or None if its process
  may still run (or runs on another host, where it cannot be checked)."""
  if holder.get("host") != socket.gethostname():
    return None
  boot = _boot_id()
  if holder.get("boot_id") and boot and holder["boot_id"] != boot:
    return "the machine has restarted since"
  pid = holder.get("pid")
  if not isinstance(pid, int) or not _pid_alive(pid):
    return f"process {pid} no longer runs"
  recorded = holder.get("start_ticks")
  if recorded is not None and process_start_ticks(pid) not in (None, recorded):
    return f"process {pid} no longer runs (its pid now belongs to another process)"
  return None


@contextlib.contextmanager
def _exclusive(directory):
  """Serialises the take-overs of a stale lock within one host (flock on the
  directory), so that two processes never both replace the same stale lock."""
  fd = os.open(directory, os.O_RDONLY)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # a file system without flock: take-overs are not serialised
      pass
    yield
  finally:
    os.close(fd)  # releases the flock


class RunLock:
  """Context manager holding `DIRECTORY/.lock` for this process.

  Args:
    directory: the run directory (created if missing; directories it created are
      removed again on exit when they are left empty).
    flag: the flag that named the directory, for messages.

  Raises (on entry):
    RunLockedError: a live process holds the lock, or its file is unreadable.
  """

  def __init__(self, directory, flag="--model_dir"):
    self.directory = directory
    self.flag = flag
    self.path = os.path.join(directory, LOCK_FILE)
    self.enabled = "://" not in directory
    self._token = None
    self._created = []

  def __enter__(self):
    self.acquire()
    return self

  def __exit__(self, *exc_info):
    self.release()

  def _describe(self):
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "start_ticks": process_start_ticks(os.getpid()), "boot_id": _boot_id(),
            "started": _started(os.getpid()), "command": _command(),
            "token": self._token}

  def _make_directories(self):
    missing, path = [], os.path.abspath(self.directory)
    while not os.path.isdir(path):
      missing.append(path)
      path = os.path.dirname(path)
    os.makedirs(self.directory, exist_ok=True)
    self._created = missing  # deepest first

  def _create(self):
    """Creates the lock file; False if it exists."""
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    try:
      with os.fdopen(fd, "w") as f:
        json.dump(self._describe(), f)
        f.flush()
        os.fsync(f.fileno())
    except BaseException:
      os.remove(self.path)  # an empty lock would block every later run
      raise
    return True

  def _read_holder(self):
    """The holder's JSON; None if the file vanished; waits briefly for a file that is
    being written."""
    deadline = time.monotonic() + _READ_WAIT_SECONDS
    while True:
      text = _read_text(self.path)
      if text is None:
        return None
      try:
        holder = json.loads(text)
        if isinstance(holder, dict):
          return holder
      except ValueError:
        pass
      if time.monotonic() > deadline:
        raise RunLockedError(
            f"{self.flag}={self.directory} is locked by {self.path}, which is "
            f"unreadable ({text[:60]!r}); if no other process trains in this "
            "directory, delete that file")
      time.sleep(0.05)

  def _refuse(self, holder):
    raise RunLockedError(
        f"{self.flag}={self.directory} is in use by process {holder.get('pid')} on "
        f"{holder.get('host')} (started {holder.get('started')}); wait for it or stop "
        f"it (its lock: {self.path})")

  def acquire(self):
    """Takes the lock (see the class docstring)."""
    if not self.enabled or self._token is not None:
      return
    self._make_directories()
    self._token = uuid.uuid4().hex
    try:
      while not self._create():
        holder = self._read_holder()
        if holder is None:
          continue  # released meanwhile: try again
        reason = stale_reason(holder)
        if reason is None:
          self._refuse(holder)
        with _exclusive(self.directory):
          # Another process may have taken the stale lock over meanwhile.
          if self._read_holder() != holder:
            continue
          os.remove(self.path)
          if not self._create():
            self._refuse(self._read_holder() or holder)
        print(f"Took over the lock of {self.flag}={self.directory} from process "
              f"{holder.get('pid')} on {holder.get('host')} (started "
              f"{holder.get('started')}): {reason}.", flush=True)
        break
    except BaseException:
      self.release()
      raise

  def release(self):
    """Removes the lock file if this process still holds it."""
    if self._token is None:
      return
    try:
      holder = json.loads(_read_text(self.path) or "null")
      if isinstance(holder, dict) and holder.get("token") == self._token:
        os.remove(self.path)
    except (OSError, ValueError):
      pass
    finally:
      self._token = None
      self._remove_created_directories()

  def _remove_created_directories(self):
    # Settings refused before anything was written leave no directory behind.
    for path in self._created:
      try:
        os.rmdir(path)
      except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
          break
        raise
    self._created = []


def locks_model_dir(fn):
  """Decorates `fn(config, ...)` to run holding `RunLock(config.model_dir)`."""
  @functools.wraps(fn)
  def locked(config, *args, **kwargs):
    with RunLock(config.model_dir):
      return fn(config, *args, **kwargs)
  return locked
