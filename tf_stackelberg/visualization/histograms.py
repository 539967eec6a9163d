"""Histograms of the latent energies visited by MCMC samplers.

Overlaying the energy histograms of several samplers shows how far each one
explores beyond the low-energy region (the view of Fig. 1 of the Wang-Landau
latent sampling paper): a flat-histogram sampler covers a much wider range
than a plain Metropolis chain.
"""

import numpy as np

from tf_stackelberg.visualization import _figure
from tf_stackelberg.visualization import colors

__all__ = ["energy_histograms"]


def _energies(energies):
  """Validates the `{name: array}` mapping; returns a list of (name, finite 1-D array)."""
  if not hasattr(energies, "items"):
    raise ValueError(
        f"`energies` must be a mapping {{sampler name: energies}}; got {type(energies).__name__}.")
  if not energies:
    raise ValueError("`energies` must name at least one sampler.")
  out = []
  for name, values in energies.items():
    try:
      arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
      raise ValueError(f"`energies[{name!r}]` must be numeric: {exc}") from exc
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
      raise ValueError(f"`energies[{name!r}]` has no finite values.")
    out.append((str(name), arr))
  return out


def _weights(weights, name, energies):
  """The finite-energy entries of `weights[name]` (None without weights)."""
  if weights is None:
    return None
  values = np.asarray(energies[name], np.float64).reshape(-1)
  w = np.asarray(weights[name], np.float64).reshape(-1)
  if w.shape != values.shape:
    raise ValueError(f"`weights[{name!r}]` has {w.size} values for {values.size} "
                     "energies.")
  return w[np.isfinite(values)]


def _bin_edges(bins, values):
  """Common bin edges for all samplers: `bins` equal bins over the pooled range, or given edges."""
  if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
    if bins < 1:
      raise ValueError(f"`bins` must be a positive integer or increasing edges; got {bins!r}.")
    pooled = np.concatenate(values)
    low, high = float(pooled.min()), float(pooled.max())
    if high <= low:
      low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, int(bins) + 1)
  try:
    edges = np.asarray(bins, dtype=np.float64)
  except (TypeError, ValueError) as exc:
    raise ValueError(f"`bins` must be a positive integer or increasing edges: {exc}") from exc
  if (edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges))
      or np.any(np.diff(edges) <= 0)):
    raise ValueError(
        f"`bins` must be a positive integer or at least 2 increasing finite edges; got {bins!r}.")
  return edges


def energy_histograms(energies, bins=50, title=None, density=True, log_scale=False,
                      xlabel="latent energy", size=(480, 320), weights=None):
  """Overlaid histograms of the energies each sampler visited.

  Every sampler gets one palette colour (in the mapping's order), drawn as a
  translucent filled histogram with a solid outline; all share the same bins.

  Args:
    energies: mapping `{sampler name: energies}`; arrays of any shape are
      flattened and non-finite values dropped.
    bins: number of equal bins spanning all samplers' energies, or an
      increasing sequence of bin edges.
    title: optional text above the plot.
    density: normalise each histogram to unit area (samplers with different
      numbers of samples stay comparable); otherwise plot counts.
    log_scale: logarithmic y axis (shows the rarely visited tails).
    xlabel: x-axis label.
    size: `(width, height)` of the image in pixels.
    weights: optional mapping `{sampler name: weights}` of the same shapes as the
      energies, e.g. visit counts when `energies` holds bin centres.

  Returns:
    `uint8` array of shape `[height, width, 3]`.

  Raises:
    ValueError: empty or non-numeric energies, or bad `bins` or `size`.
  """
  samplers = _energies(energies)
  edges = _bin_edges(bins, [values for _, values in samplers])
  try:
    width, height = size
  except (TypeError, ValueError) as exc:
    raise ValueError(f"`size` must be (width, height) in pixels; got {size!r}.") from exc
  width = _figure.check_size(width, "size[0]", 160)
  height = _figure.check_size(height, "size[1]", 120)

  left, right, bottom = 58, 12, 40
  top = 30 if title else 12
  with _figure.canvas(width, height) as fig:
    ax = _figure.add_axes(fig, left, top, width - left - right, height - top - bottom)
    histograms = [np.histogram(values, bins=edges, density=density,
                               weights=_weights(weights, name, energies))[0]
                  for name, values in samplers]
    sampler_colors = [colors.as_float(colors.generator_color(i)) for i in range(len(samplers))]
    # Fills first, outlines on top: no sampler's outline is hidden by another's fill.
    for counts, color in zip(histograms, sampler_colors):
      ax.stairs(counts, edges, fill=True, color=color, alpha=0.2, linewidth=0)
    for (name, _), counts, color in zip(samplers, histograms, sampler_colors):
      ax.stairs(counts, edges, color=color, linewidth=1.5, label=name)
    ax.set_xlim(edges[0], edges[-1])
    if log_scale:
      ax.set_yscale("log")
    else:
      ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel, **_figure.text_kwargs())
    ax.set_ylabel("density" if density else "count", **_figure.text_kwargs())
    if title:
      fig.text((left + (width - left - right) / 2) / width, 1.0 - (top / 2) / height,
               str(title), ha="center", va="center",
               **_figure.text_kwargs(_figure.TITLE_SIZE))
    leg = ax.legend(loc="upper right", frameon=True, fancybox=False, framealpha=0.9,
                    edgecolor=colors.as_float(colors.FRAME_COLOR), handlelength=1.2,
                    prop=dict(family=_figure.FONT, size=_figure.FONT_SIZE))
    for text in leg.get_texts():
      text.set_color(colors.as_float(colors.TEXT_COLOR))
    return _figure.to_array(fig)
