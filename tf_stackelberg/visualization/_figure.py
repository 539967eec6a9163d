"""Off-screen matplotlib figures rendered straight into numpy arrays.

Figures are built from `matplotlib.figure.Figure` with an Agg canvas attached
explicitly, so nothing touches `pyplot`, the global backend or a display. Sizes
are given in pixels at a fixed DPI, and fonts and colours are set explicitly
rather than taken from the default style, so equal inputs give equal pixels.
"""

import contextlib
import threading

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tf_stackelberg.visualization import colors

DPI = 100
FONT = "DejaVu Sans"  # ships with matplotlib, so text looks the same everywhere
FONT_SIZE = 8.0
TITLE_SIZE = 10.0

# Matplotlib shares font caches and a few other objects between figures; one
# figure at a time keeps concurrent callers (e.g. an evaluation thread) safe.
_LOCK = threading.Lock()


def points(pixels):
  """Converts a length in pixels to typographic points at `DPI`."""
  return float(pixels) * 72.0 / DPI


@contextlib.contextmanager
def canvas(width, height):
  """Yields a white `Figure` of `width` x `height` pixels with an Agg canvas."""
  with _LOCK:
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI,
                 facecolor=colors.as_float(colors.BACKGROUND))
    FigureCanvasAgg(fig)
    yield fig


def to_array(fig):
  """Draws `fig` and returns its pixels as a `uint8 [H, W, 3]` array."""
  fig.canvas.draw()
  rgba = np.asarray(fig.canvas.buffer_rgba())
  return np.array(rgba[..., :3], dtype=np.uint8, copy=True)


def add_axes(fig, left, top, width, height):
  """Adds axes at a pixel box (from the top-left corner) with the house style."""
  fig_w, fig_h = fig.bbox.width, fig.bbox.height
  ax = fig.add_axes((left / fig_w, 1.0 - (top + height) / fig_h,
                     width / fig_w, height / fig_h))
  ax.set_facecolor(colors.as_float(colors.BACKGROUND))
  for spine in ax.spines.values():
    spine.set_color(colors.as_float(colors.FRAME_COLOR))
    spine.set_linewidth(0.8)
  ax.tick_params(labelsize=FONT_SIZE, labelfontfamily=FONT, length=3, width=0.8, pad=2,
                 color=colors.as_float(colors.FRAME_COLOR),
                 labelcolor=colors.as_float(colors.TEXT_COLOR))
  ax.grid(True, color=colors.as_float(colors.GRID_COLOR), linewidth=0.8)
  ax.set_axisbelow(True)
  return ax


def text_kwargs(size=FONT_SIZE):
  """Keyword arguments that fix the font of a text element."""
  return dict(fontsize=size, fontfamily=FONT, color=colors.as_float(colors.TEXT_COLOR))


def check_size(value, name, minimum):
  """Returns `value` as an int, or raises ValueError if it is not an integer >= minimum."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
    raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
  if int(value) != value or int(value) < minimum:
    raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
  return int(value)
