"""Ctrl-C and SIGTERM that stop at the next step boundary instead of wherever Python
was.

During training the first SIGINT (Ctrl-C) or SIGTERM (a scheduler's or `kill`'s
request) only sets a flag, which the training loop checks after every compiled call:
it then writes a checkpoint and exits. A second signal of the same kind acts at once:
`KeyboardInterrupt` for SIGINT, `Terminated` for SIGTERM.

Outside training, `terminate_by_exception` makes SIGTERM raise `Terminated`, so that
the `finally` blocks that remove staging folders and release locks run, as they do
for Ctrl-C. An exception raised wherever Python was can land inside a library's
locked section (TensorFlow's tracing, for one) and leave the unwinding waiting on
that lock for ever; so SIGTERM also arms a deadline: if the process is still alive
`FORCED_EXIT_AFTER_S` seconds later, the staging folders are removed and it exits
with status 143 at once.

An exception raised by a signal handler can also come out under another type: C code
that was calling back into Python when the signal arrived (TensorFlow's `nest` while
tracing, for one) may replace it with an error of its own. `raised_signal` says which
signal's exception was raised, so that the caller can report the stop as a stop.
"""

import os
import signal
import sys
import threading

#: Seconds a SIGTERM outside training may take to unwind before the process exits.
FORCED_EXIT_AFTER_S = 10.0

# Exit statuses of a stop by signal: 128 + the signal's number, as shells report it.
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
  """Work stopped on the user's request; the message says how to resume.

  Attributes:
    exit_status: 130 after SIGINT, 143 after SIGTERM.
  """

  def __init__(self, message, signum=None):
    super().__init__(message)
    self.exit_status = EXIT_STATUS.get(signum, EXIT_STATUS[signal.SIGINT])


class Terminated(BaseException):
  """SIGTERM arrived where no step boundary could take it (like `KeyboardInterrupt`,
  not an `Exception`, so that no `except Exception` swallows it)."""


# The last signal whose handler raised an exception in this process (None before).
_raised = None


def raised_signal():
  """The last signal (SIGINT or SIGTERM) whose handler raised an exception here, or
  None: whatever exception unwinds after it is that signal's, whatever its type."""
  return _raised


def _raise_terminated(signum, frame):  # pylint: disable=unused-argument
  global _raised
  _raised = signal.SIGTERM
  _arm_forced_exit()
  raise Terminated()


def _raise_keyboard_interrupt(signum, frame):  # pylint: disable=unused-argument
  global _raised
  _raised = signal.SIGINT
  raise KeyboardInterrupt()


def _arm_forced_exit(seconds=None):
  timer = threading.Timer(FORCED_EXIT_AFTER_S if seconds is None else seconds,
                          _forced_exit)
  timer.daemon = True  # a process that unwinds in time exits without waiting
  timer.start()


def _forced_exit():
  """Removes the staging folders and ends the process (status 143)."""
  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.common import files  # TensorFlow is loaded by now
  files.remove_staging_directories()
  # os.write: the main thread may hold the lock of sys.stderr's buffer.
  os.write(2, (f"\nerror: terminated (SIGTERM); the process did not unwind within "
               f"{FORCED_EXIT_AFTER_S:g} s and stopped at once; its staging folders "
               "were removed, and files are written whole or not at all\n").encode())
  os._exit(EXIT_STATUS[signal.SIGTERM])  # pylint: disable=protected-access


def terminate_by_exception():
  """Makes SIGTERM raise `Terminated` in the main thread (a no-op elsewhere), and
  records Ctrl-C's `KeyboardInterrupt` for `raised_signal` (unless SIGINT is ignored,
  as in a shell's background job)."""
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _raise_terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
      signal.signal(signal.SIGINT, _raise_keyboard_interrupt)


class StopRequest:
  """Context manager that turns the first SIGINT or SIGTERM into `requested = True`.

  Attributes:
    requested: a stop was asked for.
    signum: the signal that asked for it (None before).
  """

  def __init__(self, stream=None):
    self.requested = False
    self.signum = None
    self._stream = stream or sys.stderr
    self._previous = {}

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.requested = True
    self.signum = self.signum or signum
    # The next signal of this kind acts at once.
    previous = self._previous.get(signum)
    signal.signal(signum, previous if previous is not None else (
        signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL))
    again = "press Ctrl-C" if signum == signal.SIGINT else "send SIGTERM"
    self._stream.write(f"\nStopping at the next step ({signal.Signals(signum).name}); "
                       f"{again} again to abort without saving.\n")
    self._stream.flush()

  def __enter__(self):
    # Signal handlers can only be installed from the main thread.
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in _SIGNALS}
    return self

  def __exit__(self, *exc_info):
    for signum, previous in self._previous.items():
      if previous is not None:
        signal.signal(signum, previous)
    self._previous = {}
    return False
