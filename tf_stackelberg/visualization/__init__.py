"""Figures as `uint8 [H, W, 3]` numpy images, for PNG files and TensorBoard.

Plots are drawn with matplotlib's Agg renderer on explicitly created figures
(no `pyplot`, no display, no global backend change); tiling and file output
are plain numpy plus TensorFlow's PNG encoder.
"""

from tf_stackelberg.visualization.colors import PALETTE, REAL_COLOR, generator_color
from tf_stackelberg.visualization.histograms import energy_histograms
from tf_stackelberg.visualization.images import (
    image_grid,
    image_summary_tensor,
    save_png,
    side_by_side,
)
from tf_stackelberg.visualization.scatter import render_scatter

__all__ = [
    "PALETTE",
    "REAL_COLOR",
    "energy_histograms",
    "generator_color",
    "image_grid",
    "image_summary_tensor",
    "render_scatter",
    "save_png",
    "side_by_side",
]
