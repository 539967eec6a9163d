"""Colours shared by every figure: one per generator, plus a few reserved ones."""

import numpy as np

__all__ = ["PALETTE", "BACKGROUND", "REAL_COLOR", "generator_color"]

# Mutually distinguishable colours (RGB), one per generator. The first 18 were
# picked by hand; the rest extend the list greedily, each maximising its
# smallest CIELAB distance to the colours before it and to the reserved ones
# below. None is close to white, black or any grey, so real data (grey) and
# text never look like a generator.
PALETTE = np.array([
    (220, 30, 40),    # red
    (30, 90, 220),    # blue
    (30, 160, 60),    # green
    (250, 140, 20),   # orange
    (130, 50, 190),   # purple
    (0, 180, 200),    # cyan
    (230, 40, 180),   # magenta
    (140, 190, 20),   # lime
    (150, 85, 40),    # brown
    (20, 30, 120),    # navy
    (0, 120, 110),    # teal
    (250, 130, 160),  # pink
    (220, 180, 0),    # gold
    (120, 10, 40),    # maroon
    (110, 170, 250),  # sky blue
    (180, 130, 240),  # lavender
    (100, 110, 20),   # olive
    (255, 100, 70),   # coral
    (0, 0, 250),      # pure blue
    (0, 220, 0),      # bright green
    (230, 0, 250),    # violet
    (130, 30, 110),   # plum
    (0, 210, 170),    # aquamarine
    (250, 10, 120),   # raspberry
    (240, 180, 110),  # sand
    (0, 90, 170),     # cobalt
    (0, 100, 40),     # forest green
], dtype=np.uint8)
PALETTE.setflags(write=False)

BACKGROUND = np.array((255, 255, 255), dtype=np.uint8)
REAL_COLOR = np.array((150, 150, 150), dtype=np.uint8)
GRID_COLOR = np.array((232, 232, 232), dtype=np.uint8)
FRAME_COLOR = np.array((160, 160, 160), dtype=np.uint8)
TEXT_COLOR = np.array((40, 40, 40), dtype=np.uint8)
for _reserved in (BACKGROUND, REAL_COLOR, GRID_COLOR, FRAME_COLOR, TEXT_COLOR):
  _reserved.setflags(write=False)


def generator_color(index):
  """RGB colour (uint8 array of 3) of generator `index`.

  Colours repeat after `len(PALETTE)` generators.
  """
  return PALETTE[int(index) % len(PALETTE)]


def as_float(color):
  """A uint8 RGB colour as the float triple matplotlib expects."""
  return tuple(float(c) / 255.0 for c in np.asarray(color, dtype=np.uint8))
