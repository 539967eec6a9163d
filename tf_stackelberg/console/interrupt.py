"""Ctrl-C that stops at the next step boundary instead of wherever Python was.

The first SIGINT only sets a flag, which the training loop checks after every compiled
call: it then writes a checkpoint and exits. A second SIGINT raises
`KeyboardInterrupt` at once, as usual.
"""

import signal
import sys
import threading


class Interrupted(Exception):
  """Work stopped on the user's request; the message says how to resume."""


class StopRequest:
  """Context manager that turns the first Ctrl-C into `requested = True`."""

  def __init__(self, stream=None):
    self.requested = False
    self._stream = stream or sys.stderr
    self._previous = None

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.requested = True
    signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
    self._stream.write("\nStopping at the next step; press Ctrl-C again to abort "
                       "without saving.\n")
    self._stream.flush()

  def __enter__(self):
    # Signal handlers can only be installed from the main thread.
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGINT, self._handle)
    return self

  def __exit__(self, *exc_info):
    if self._previous is not None:
      signal.signal(signal.SIGINT, self._previous)
    return False
