"""A single progress line that redraws in place on a terminal and never wraps.

On a terminal the line is redrawn with a carriage return at most a few times per
second; elsewhere (logs, CI) nothing is drawn and only the lines passed to `print`
appear. Lines are cut to the terminal width (see `text.terminal_width`).
"""

import sys
import time

from tf_stackelberg.console import text

# Seconds between redraws: fast enough to look live, cheap enough not to slow steps.
REDRAW_SECONDS = 0.2


class ProgressLine:
  """A redrawable status line plus permanent lines printed above it.

  Example:
    progress = ProgressLine()
    for step in range(total):
      ...
      progress.update(lambda: f"step {step}/{total}")
    progress.print("done")
  """

  def __init__(self, stream=None, live=None, clock=time.monotonic):
    self.stream = stream or sys.stdout
    self.live = self.stream.isatty() if live is None else live
    self.width = text.terminal_width(self.stream)
    self._clock = clock
    self._last_draw = None
    self._drawn = 0

  def due(self):
    """Whether a redraw is due (so callers build the text only when needed)."""
    return self.live and (self._last_draw is None or
                          self._clock() - self._last_draw >= REDRAW_SECONDS)

  def update(self, make_text, force=False):
    """Redraws the line with `make_text()` when due (or `force`)."""
    if not self.live or not (force or self.due()):
      return
    line = make_text()[:self.width]
    pad = " " * max(0, self._drawn - len(line))
    self.stream.write("\r" + line + pad)
    self.stream.flush()
    self._drawn = len(line)
    self._last_draw = self._clock()

  def clear(self):
    """Erases the live line (the cursor returns to the start of it)."""
    if self.live and self._drawn:
      self.stream.write("\r" + " " * self._drawn + "\r")
      self.stream.flush()
    self._drawn = 0
    self._last_draw = None

  def print(self, line=""):
    """Prints a permanent line (cut to the width) where the live line was."""
    self.clear()
    self.stream.write(line[:self.width] + "\n")
    self.stream.flush()
