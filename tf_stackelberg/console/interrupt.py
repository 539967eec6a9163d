"""Ctrl-C and SIGTERM that stop at the next step boundary instead of wherever Python
was.

During training the first SIGINT (Ctrl-C) or SIGTERM (a scheduler's or `kill`'s
request) only sets a flag, which the training loop checks after every compiled call:
it then writes a checkpoint and exits. A second signal of the same kind acts at once:
`KeyboardInterrupt` for SIGINT, `Terminated` for SIGTERM.

Outside training, `terminate_by_exception` makes SIGTERM raise `Terminated`, so that
the `finally` blocks that remove staging folders and release locks run, as they do
for Ctrl-C.
"""

import signal
import sys
import threading

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


def _raise_terminated(signum, frame):  # pylint: disable=unused-argument
  raise Terminated()


def terminate_by_exception():
  """Makes SIGTERM raise `Terminated` in the main thread (a no-op elsewhere)."""
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _raise_terminated)


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
