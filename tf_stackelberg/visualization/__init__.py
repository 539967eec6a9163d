"""Numpy-only plotting helpers (PNG / TensorBoard output via TensorFlow)."""

from tf_stackelberg.visualization.scatter import (
    PALETTE,
    generator_color,
    image_summary_tensor,
    render_scatter,
    save_png,
    side_by_side,
)

__all__ = [
    "PALETTE",
    "generator_color",
    "image_summary_tensor",
    "render_scatter",
    "save_png",
    "side_by_side",
]
