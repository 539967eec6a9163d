"""Manifold metrics of generated features against real features, as plain NumPy
functions (docs/design.md section 14.2).

FID and KID fold fidelity and diversity into one number; a latent sampler that trades
one for the other (sharper samples of fewer kinds) can leave them unchanged. These
metrics separate the two by estimating each set's support with k-nearest-neighbour
balls:

* `precision_recall`: improved precision and recall (Kynkaanniemi et al., NeurIPS
  2019, arXiv:1904.06991), k = 3. Precision is the share of fake features inside the
  union of the real features' k-NN balls (fidelity); recall the share of real features
  inside the union of the fake features' k-NN balls (diversity).
* `density_coverage`: density and coverage (Naeem et al., ICML 2020,
  arXiv:2002.09797), k = 5. Density counts how many real balls hold each fake feature,
  divided by k (about 1 when both sets come from one distribution, above 1 where fakes
  crowd dense real regions); coverage is the share of real balls that hold at least
  one fake feature. Both use only the real balls, so outlying fakes cannot inflate them.
* `manifold_metrics`: all four in one pass over the distances.

Conventions (exact, so that ties and duplicates give defined answers):

* A point is its own 0-th neighbour: the k-th neighbour radius of a point is the k-th
  smallest distance to the *other* points of its set (duplicates of the point are
  other points at distance 0).
* Precision and recall use closed balls (`d <= r`, as Kynkaanniemi et al.'s released
  code); density and coverage use open balls (`d < r`, as Naeem et al.'s). With open
  balls a set against itself has density exactly 1 when no two distances tie: each
  fake point lies in its own ball and in the balls of the points that have it among
  their k-1 nearest neighbours (the k-th lies on the sphere), `N (1 + (k - 1)) /
  (k N) = 1`.

Distances are squared Euclidean distances `|a|^2 + |b|^2 - 2 a.b` in float64 (round-off
below 0 set to 0), compared as squares. They are computed a block of rows at a time,
so that 10,000 x 10,000 features never hold more than `CHUNK_BYTES` of distances at
once. The block size changes a distance at most in its last bit (BLAS may sum the
dot products of another block shape in another order), which could move a metric
only at an exact tie; integer-valued features give exact distances.
"""

from typing import Dict, Optional, Sequence

import numpy as np

__all__ = [
    "PRECISION_K",
    "DENSITY_K",
    "squared_distances",
    "knn_radii",
    "precision_recall",
    "density_coverage",
    "manifold_metrics",
]

# Neighbours of the two papers' recommended settings.
PRECISION_K = 3
DENSITY_K = 5
# Distances held at once (one block of rows against a whole set), in bytes.
CHUNK_BYTES = 64 * 2 ** 20


def _matrix(value, name, columns=None):
  """`value` as a float64 `[N, D]` array (ValueError otherwise)."""
  arr = np.asarray(value, dtype=np.float64)
  if arr.ndim != 2:
    raise ValueError(f"`{name}` must have shape [N, D]; got shape {arr.shape}.")
  if columns is not None and arr.shape[1] != columns:
    raise ValueError(f"`{name}` has {arr.shape[1]} columns, expected {columns}.")
  return arr


def _squared_norms(x):
  return np.einsum("ij,ij->i", x, x)


def squared_distances(a, b) -> np.ndarray:
  """float64 `[len(a), len(b)]` squared Euclidean distances between the rows of two
  `[N, D]` arrays (round-off below 0 set to 0)."""
  a = _matrix(a, "a")
  b = _matrix(b, "b", columns=a.shape[1])
  return _block(a, _squared_norms(a), b, _squared_norms(b))


def _block(a, a_norms, b, b_norms):
  d = a @ b.T
  d *= -2.0
  d += a_norms[:, None]
  d += b_norms[None, :]
  return np.maximum(d, 0.0, out=d)


def _row_blocks(a, b, chunk_rows):
  """Yields `(start, squared distances [rows, len(b)] of a[start:start + rows] to
  b)`, `rows` set by `chunk_rows` or else by `CHUNK_BYTES`."""
  rows = (int(chunk_rows) if chunk_rows is not None
          else CHUNK_BYTES // (8 * max(1, len(b))))
  rows = max(1, rows)
  b_norms = _squared_norms(b)
  for start in range(0, len(a), rows):
    part = a[start:start + rows]
    yield start, _block(part, _squared_norms(part), b, b_norms)


def _check_k(k, name):
  if int(k) != k or k < 1:
    raise ValueError(f"`{name}` must be a positive integer; got {k}.")
  return int(k)


def knn_radii(features, ks: Sequence[int], chunk_rows: Optional[int] = None,
              squared: bool = False) -> np.ndarray:
  """The distance of each row to its k-th nearest neighbour among the other rows.

  Args:
    features: `[N, D]`, `N > max(ks)`.
    ks: the neighbour numbers k (each >= 1).
    chunk_rows: rows of distances computed at once (default: `CHUNK_BYTES` of them).
    squared: return squared distances.

  Returns:
    float64 `[N, len(ks)]`: column `j` holds the radius of neighbour `ks[j]`.
  """
  x = _matrix(features, "features")
  ks = [_check_k(k, "k") for k in ks]
  if len(x) <= max(ks):
    raise ValueError(f"the {max(ks)}-th nearest neighbour needs at least "
                     f"{max(ks) + 1} rows; got {len(x)}.")
  radii = np.empty((len(x), len(ks)))
  for start, d in _row_blocks(x, x, chunk_rows):
    rows = np.arange(len(d))
    # Below every distance: each point is its own 0-th neighbour, even among copies.
    d[rows, start + rows] = -1.0
    radii[start:start + len(d)] = np.partition(d, ks, axis=1)[:, ks]
  return radii if squared else np.sqrt(radii)


def manifold_metrics(real_features, fake_features, precision_k: int = PRECISION_K,
                     density_k: int = DENSITY_K, real_radii: Optional[np.ndarray] = None,
                     chunk_rows: Optional[int] = None) -> Dict[str, float]:
  """Improved precision and recall (k = `precision_k`) and density and coverage
  (k = `density_k`) of fake features against real features, in one pass.

  Args:
    real_features: `[N, D]` real features, `N > max(precision_k, density_k)`.
    fake_features: `[M, D]` fake features, `M > precision_k`.
    precision_k, density_k: the neighbour numbers (3 and 5 in the papers).
    real_radii: optional `knn_radii(real_features, (precision_k, density_k),
      squared=True)`, computed once for a fixed real set.
    chunk_rows: fake rows whose distances to every real row are held at once.

  Returns:
    dict with `precision`, `recall`, `density` and `coverage`.

  Example:
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(1000, 8))
    >>> m = manifold_metrics(real, rng.normal(size=(1000, 8)))  # each near 1
    >>> manifold_metrics(real, real)["coverage"]
    1.0
  """
  real = _matrix(real_features, "real_features")
  fake = _matrix(fake_features, "fake_features", columns=real.shape[1])
  kp, kd = _check_k(precision_k, "precision_k"), _check_k(density_k, "density_k")
  if real_radii is None:
    real_radii = knn_radii(real, (kp, kd), chunk_rows, squared=True)
  real_radii = np.asarray(real_radii, np.float64)
  if real_radii.shape != (len(real), 2):
    raise ValueError(f"`real_radii` must have shape [{len(real)}, 2]; got "
                     f"{real_radii.shape}.")
  real_p, real_d = real_radii[:, 0], real_radii[:, 1]
  fake_p = knn_radii(fake, (kp,), chunk_rows, squared=True)[:, 0]
  precise = in_real_balls = 0
  recalled = np.zeros(len(real), bool)
  nearest_fake = np.full(len(real), np.inf)
  for start, d in _row_blocks(fake, real, chunk_rows):
    precise += np.count_nonzero((d <= real_p).any(axis=1))
    in_real_balls += np.count_nonzero(d < real_d)
    recalled |= (d <= fake_p[start:start + len(d), None]).any(axis=0)
    np.minimum(nearest_fake, d.min(axis=0), out=nearest_fake)
  return {"precision": float(precise / len(fake)),
          "recall": float(recalled.mean()),
          "density": float(in_real_balls / (kd * len(fake))),
          "coverage": float(np.mean(nearest_fake < real_d))}


def precision_recall(real_features, fake_features, k: int = PRECISION_K,
                     chunk_rows: Optional[int] = None):
  """(precision, recall) of Kynkaanniemi et al. (2019) with `k` neighbours: the share
  of fakes inside the union of the real k-NN balls, and of reals inside the union of
  the fake k-NN balls (closed balls)."""
  m = manifold_metrics(real_features, fake_features, k, k, chunk_rows=chunk_rows)
  return m["precision"], m["recall"]


def density_coverage(real_features, fake_features, k: int = DENSITY_K,
                     chunk_rows: Optional[int] = None):
  """(density, coverage) of Naeem et al. (2020) with `k` neighbours: the mean number of
  real k-NN balls holding a fake, over k, and the share of real balls holding a fake
  (open balls)."""
  m = manifold_metrics(real_features, fake_features, k, k, chunk_rows=chunk_rows)
  return m["density"], m["coverage"]
