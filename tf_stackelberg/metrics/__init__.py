"""Evaluation metrics for generated samples."""

from tf_stackelberg.metrics.mixture_metrics import (
    assign_to_modes,
    format_metrics,
    mixture_metrics,
)

__all__ = ["assign_to_modes", "format_metrics", "mixture_metrics"]
