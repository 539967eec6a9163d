"""Mode-coverage metrics for generators trained on Gaussian-mixture toy data.

The definitions follow the ones commonly used for the 2-D ring / grid
benchmarks (VEEGAN, PacGAN):

* every sample is assigned to its nearest mode centre (Euclidean distance);
* a sample is *high quality* (HQ) when that distance is strictly below
  ``num_std * std`` (``num_std`` defaults to 3);
* ``modes`` counts the mode centres that received at least one HQ sample;
* ``high_quality`` is the fraction of all samples that are HQ;
* ``reverse_kl`` is ``KL(q || uniform)`` where ``q`` is the normalised
  histogram of HQ samples over the ``M`` modes, i.e.
  ``sum_{m: q_m > 0} q_m * log(q_m * M)``.

Everything is plain numpy (the compiled, batched evaluator of training,
`tf_stackelberg.evaluation.mixture`, accumulates the same counts in TensorFlow and
finishes with `metrics_from_counts`). Inputs may be numpy arrays, Python sequences or
eager TensorFlow tensors (anything ``np.asarray`` understands), and the
returned dictionaries only contain built-in Python types so they can be
written straight to JSON.
"""

import math

import numpy as np

__all__ = [
    "assign_to_modes",
    "mixture_metrics",
    "format_metrics",
    "metrics_from_counts",
]

# Upper bound on the number of float64 elements in the temporary
# [chunk, M, D] difference tensor, so memory stays bounded (~32 MB) no
# matter how many samples are evaluated at once.
_MAX_CHUNK_ELEMENTS = 1 << 22


def _as_points(value, name, dim=None, allow_nonfinite=True):
  """Converts ``value`` to a float64 ``[N, D]`` array or raises ValueError."""
  try:
    arr = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as exc:
    raise ValueError(f"`{name}` must be a numeric array of shape [N, D]: {exc}") from exc
  if arr.ndim != 2:
    raise ValueError(f"`{name}` must have shape [N, D]; got shape {arr.shape}.")
  if arr.shape[1] == 0:
    raise ValueError(f"`{name}` must have at least one coordinate column; got shape {arr.shape}.")
  if dim is not None and arr.shape[1] != dim:
    raise ValueError(
        f"`{name}` has {arr.shape[1]} coordinates per point but `centers` has {dim}.")
  if not allow_nonfinite and not np.all(np.isfinite(arr)):
    raise ValueError(f"`{name}` must contain only finite values.")
  return arr


def _validate_std(std):
  """Returns ``std`` as a positive finite float or raises ValueError."""
  if np.ndim(std) != 0:
    raise ValueError(f"`std` must be a scalar; got shape {np.shape(std)}.")
  try:
    value = float(std)
  except (TypeError, ValueError) as exc:
    raise ValueError(f"`std` must be a positive number; got {std!r}.") from exc
  if not math.isfinite(value) or value <= 0.0:
    raise ValueError(f"`std` must be a finite number > 0; got {value}.")
  return value


def assign_to_modes(samples, centers, chunk_size=None):
  """Finds the nearest mode centre for every sample.

  Args:
    samples: ``[N, D]`` array-like of points.
    centers: ``[M, D]`` array-like of mode centres (finite).
    chunk_size: optional number of samples processed per step. By default it
      is chosen so the temporary ``[chunk, M, D]`` buffer stays small.

  Returns:
    ``(indices, distances)``: int64 ``[N]`` index of the nearest centre (ties
    go to the lowest index) and float64 ``[N]`` Euclidean distance to it.
    Samples containing NaN/inf get distance ``inf`` (they can never count as
    high quality) and index 0.
  """
  centers = _as_points(centers, "centers", allow_nonfinite=False)
  if centers.shape[0] == 0:
    raise ValueError("`centers` must contain at least one mode centre.")
  samples = _as_points(samples, "samples", dim=centers.shape[1])
  num_samples = samples.shape[0]
  num_modes, dim = centers.shape
  if chunk_size is None:
    chunk_size = max(1, _MAX_CHUNK_ELEMENTS // (num_modes * dim))
  elif int(chunk_size) < 1:
    raise ValueError(f"`chunk_size` must be >= 1; got {chunk_size}.")
  chunk_size = int(chunk_size)

  indices = np.zeros(num_samples, dtype=np.int64)
  distances = np.full(num_samples, np.inf, dtype=np.float64)
  for start in range(0, num_samples, chunk_size):
    block = samples[start:start + chunk_size]
    # Explicit differences instead of the |x|^2 - 2x.c + |c|^2 expansion:
    # the expansion loses precision for points sitting almost on a centre,
    # which is exactly where the HQ threshold is decided for small std.
    diff = block[:, None, :] - centers[None, :, :]
    sq = np.einsum("nmd,nmd->nm", diff, diff)
    finite = np.all(np.isfinite(block), axis=1)
    sq[~finite] = np.inf
    best = np.argmin(sq, axis=1)
    indices[start:start + block.shape[0]] = np.where(finite, best, 0)
    distances[start:start + block.shape[0]] = np.sqrt(sq[np.arange(block.shape[0]), best])
  return indices, distances


def _reverse_kl(histogram):
  """KL(q || uniform) of a count histogram; log(M) when it is empty."""
  num_modes = histogram.shape[0]
  total = histogram.sum()
  if total == 0:
    # No high-quality sample at all. +inf would break JSON logs, so we use
    # log(M): the divergence of putting all mass on a single mode, i.e.
    # the worst value any non-empty histogram can reach.
    return float(math.log(num_modes))
  q = histogram[histogram > 0].astype(np.float64) / float(total)
  # Clamp tiny negative round-off so a perfectly uniform histogram is 0.
  return max(0.0, float(np.sum(q * np.log(q * num_modes))))


def _validate_generator_ids(generator_ids, num_samples, num_generators):
  """Checks per-sample generator ids; returns (int64 ids, number of generators)."""
  ids = np.asarray(generator_ids)
  if ids.ndim != 1 or ids.shape[0] != num_samples:
    raise ValueError(
        f"`generator_ids` must have shape [{num_samples}] (one id per sample); "
        f"got shape {ids.shape}.")
  if ids.size and not np.issubdtype(ids.dtype, np.integer):
    integral_floats = (np.issubdtype(ids.dtype, np.floating)
                       and np.all(np.isfinite(ids)) and np.all(ids == np.round(ids)))
    if integral_floats:
      ids = ids.astype(np.int64)
    else:
      raise ValueError(f"`generator_ids` must contain integers; got dtype {ids.dtype}.")
  ids = ids.astype(np.int64)
  if ids.size and ids.min() < 0:
    raise ValueError("`generator_ids` must be non-negative.")
  needed = int(ids.max()) + 1 if ids.size else 0
  if num_generators is None:
    num_generators = needed
  else:
    if (np.ndim(num_generators) != 0 or int(num_generators) != num_generators
        or int(num_generators) < 0):
      raise ValueError(
          f"`num_generators` must be a non-negative integer; got {num_generators!r}.")
    num_generators = int(num_generators)
    if num_generators < needed:
      raise ValueError(
          f"`num_generators`={num_generators} but `generator_ids` contains id {needed - 1}.")
  return ids, num_generators


def mixture_metrics(samples, centers, std, generator_ids=None, num_generators=None,
                    cover_threshold=0.05, num_std=3.0, chunk_size=None):
  """Computes mode-coverage statistics of samples from a Gaussian mixture model.

  Args:
    samples: ``[N, D]`` generated points (numpy array, list or eager tensor).
      Non-finite rows are kept in ``num_samples`` but are never HQ.
    centers: ``[M, D]`` centres of the mixture components.
    std: scalar standard deviation of each (isotropic) component, > 0.
    generator_ids: optional ``[N]`` non-negative integer id of the generator
      that produced each sample. Enables the ``per_generator`` breakdown.
    num_generators: number of generators to report; defaults to
      ``max(generator_ids) + 1``. Generators without samples get an all-zero
      entry, which is how a collapsed/unused generator shows up.
    cover_threshold: a mode is listed in a generator's ``modes_covered`` when
      it holds at least this fraction of that generator's HQ samples. The
      threshold filters out the few stray HQ samples every generator emits
      near neighbouring modes.
    num_std: HQ radius in units of ``std`` (3 in the reference definitions).
    chunk_size: optional number of samples per distance computation step.

  Returns:
    dict with keys ``num_samples``, ``num_modes_total``, ``modes``,
    ``high_quality`` (fraction in [0, 1]), ``reverse_kl``, ``mode_histogram``
    (HQ counts per mode), ``std`` and ``num_std``; plus ``per_generator`` when
    ``generator_ids`` is given: a list of dicts with ``generator``,
    ``num_samples``, ``high_quality``, ``mode_histogram``, ``modes_covered``,
    ``dominant_mode`` (``None`` without HQ samples) and ``dominant_share``
    (HQ samples on the dominant mode divided by *all* samples of that
    generator). ``reverse_kl`` is ``log(M)`` when no sample is HQ.
  """
  std = _validate_std(std)
  if np.ndim(num_std) != 0 or not float(num_std) > 0 or not math.isfinite(float(num_std)):
    raise ValueError(f"`num_std` must be a finite number > 0; got {num_std!r}.")
  if np.ndim(cover_threshold) != 0 or not 0.0 <= float(cover_threshold) <= 1.0:
    raise ValueError(f"`cover_threshold` must lie in [0, 1]; got {cover_threshold!r}.")
  centers = _as_points(centers, "centers", allow_nonfinite=False)
  if centers.shape[0] == 0:
    raise ValueError("`centers` must contain at least one mode centre.")
  samples = _as_points(samples, "samples", dim=centers.shape[1])
  num_samples = samples.shape[0]
  num_modes = centers.shape[0]

  ids = None
  if generator_ids is not None:
    ids, num_generators = _validate_generator_ids(generator_ids, num_samples, num_generators)
  elif num_generators is not None:
    raise ValueError("`num_generators` was given without `generator_ids`.")

  nearest, distance = assign_to_modes(samples, centers, chunk_size=chunk_size)
  is_hq = distance < float(num_std) * std
  if ids is None:
    ids, num_generators = np.zeros(num_samples, np.int64), 1
  joint = np.bincount(ids[is_hq] * num_modes + nearest[is_hq],
                      minlength=num_generators * num_modes)
  result = metrics_from_counts(
      joint.reshape(num_generators, num_modes),
      np.bincount(ids, minlength=num_generators), std, num_std, cover_threshold)
  if generator_ids is None:
    del result["per_generator"]
  return result


def metrics_from_counts(hq_counts, sample_counts, std, num_std=3.0,
                        cover_threshold=0.05):
  """The metrics of `mixture_metrics` from accumulated counts.

  Args:
    hq_counts: int `[K, M]` high-quality samples of generator k on mode m.
    sample_counts: int `[K]` samples of generator k.
    std, num_std, cover_threshold: as in `mixture_metrics`.

  Returns:
    The dict `mixture_metrics` returns, with `per_generator`.
  """
  hq_counts = np.asarray(hq_counts, np.int64)
  sample_counts = np.asarray(sample_counts, np.int64)
  num_samples = int(sample_counts.sum())
  histogram = hq_counts.sum(axis=0)
  num_hq = int(histogram.sum())
  return {
      "num_samples": num_samples,
      "num_modes_total": int(hq_counts.shape[1]),
      "modes": int(np.count_nonzero(histogram)),
      "high_quality": float(num_hq / num_samples) if num_samples else 0.0,
      "reverse_kl": _reverse_kl(histogram),
      "mode_histogram": [int(c) for c in histogram],
      "std": float(std),
      "num_std": float(num_std),
      "per_generator": _per_generator(hq_counts, sample_counts, float(cover_threshold)),
  }


def _per_generator(hq_counts, sample_counts, cover_threshold):
  """One row per generator from its high-quality mode histogram."""
  rows = []
  for g, (hist, n_g) in enumerate(zip(hq_counts, sample_counts)):
    n_g = int(n_g)
    hq_g = int(hist.sum())
    if hq_g > 0:
      dominant = int(np.argmax(hist))
      covered = [int(m) for m in np.flatnonzero(
          (hist > 0) & (hist >= cover_threshold * hq_g))]
      share = float(hist[dominant] / n_g)
    else:
      dominant, covered, share = None, [], 0.0
    rows.append({
        "generator": g,
        "num_samples": n_g,
        "high_quality": float(hq_g / n_g) if n_g else 0.0,
        "mode_histogram": [int(c) for c in hist],
        "modes_covered": covered,
        "dominant_mode": dominant,
        "dominant_share": share,
    })
  return rows


def format_metrics(result):
  """Renders a ``mixture_metrics`` result as a human-readable text block.

  The first lines summarise the global metrics; when ``per_generator`` is
  present a fixed-width table follows with one row per generator (samples,
  HQ percentage, dominant mode, its share, modes covered).
  """
  lines = [
      "samples: {n}  modes: {m}/{t}  high quality: {hq:.1f}%  reverse KL: {kl:.4f}".format(
          n=result["num_samples"], m=result["modes"], t=result["num_modes_total"],
          hq=100.0 * result["high_quality"], kl=result["reverse_kl"]),
      "HQ samples per mode: " + " ".join(str(c) for c in result["mode_histogram"]),
  ]
  rows = result.get("per_generator")
  if rows:
    header = "{:>9}  {:>9}  {:>6}  {:>13}  {:>6}  {}".format(
        "generator", "samples", "HQ %", "dominant mode", "share", "modes covered")
    lines.append(header)
    lines.append("-" * len(header))
    for row in rows:
      dominant = "-" if row["dominant_mode"] is None else str(row["dominant_mode"])
      covered = ",".join(str(m) for m in row["modes_covered"]) or "-"
      lines.append("{:>9}  {:>9}  {:>6.1f}  {:>13}  {:>5.1f}%  {}".format(
          row["generator"], row["num_samples"], 100.0 * row["high_quality"],
          dominant, 100.0 * row["dominant_share"], covered))
  return "\n".join(lines)
