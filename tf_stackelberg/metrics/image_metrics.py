"""Image metrics as plain NumPy functions of a network's outputs (docs/design.md
section 9.1).

Every function takes arrays (NumPy arrays, lists or eager tensors) of logits,
probabilities, features or labels, so the same function serves any network: the data
set's own classifier, InceptionV3, or anything else that maps images to class scores
and feature vectors. Computation is in float64, and results are built-in Python types
that can be written to JSON.

* `classifier_score`: the Inception Score formula `exp(E_x KL(p(y|x) || p(y)))`.
* `frechet_distance`, `fid_from_features`: the Frechet distance between two Gaussians
  fitted to feature sets, without SciPy.
* `kid`: the kernel inception distance, the unbiased `MMD^2` with the cubic polynomial
  kernel, averaged over random subsets.
* `fid_bootstrap`, `kid_bootstrap`, `bootstrap_interval`: FID and KID of bootstrap
  resamples of the features, and the normal interval they give (section 14.2).
* `label_histogram`, `per_generator_label_histogram`, `label_coverage`,
  `kl_to_uniform`: how predicted labels spread over the classes (and generators).
* `stacked_mnist_modes`, `stacked_mnist_metrics`: the 1000 digit-triple modes of
  Stacked-MNIST.
"""

import math
import statistics
from typing import Dict, Tuple

import numpy as np

__all__ = [
    "classifier_score",
    "classifier_score_splits",
    "feature_statistics",
    "frechet_distance",
    "fid_from_features",
    "kid",
    "kid_bootstrap",
    "fid_bootstrap",
    "bootstrap_counts",
    "bootstrap_interval",
    "BOOTSTRAP_RESAMPLES",
    "predicted_labels",
    "label_histogram",
    "per_generator_label_histogram",
    "label_coverage",
    "kl_to_uniform",
    "stacked_mnist_modes",
    "stacked_mnist_metrics",
    "STACKED_MNIST_MODES",
]

# Digit triples of Stacked-MNIST.
STACKED_MNIST_MODES = 1000


def _matrix(value, name, columns=None):
  """`value` as a float64 `[N, D]` array (ValueError otherwise)."""
  arr = np.asarray(value, dtype=np.float64)
  if arr.ndim != 2:
    raise ValueError(f"`{name}` must have shape [N, D]; got shape {arr.shape}.")
  if columns is not None and arr.shape[1] != columns:
    raise ValueError(f"`{name}` has {arr.shape[1]} columns, expected {columns}.")
  return arr


def _log_probabilities(predictions, from_logits):
  """Row-wise `log p(y|x)` `[N, C]` of logits or of probabilities."""
  x = _matrix(predictions, "predictions")
  if x.shape[0] == 0:
    raise ValueError("`predictions` must hold at least one row.")
  if from_logits:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  if np.any(x < 0):
    raise ValueError("probabilities must be >= 0 (pass from_logits=True for logits).")
  with np.errstate(divide="ignore"):
    return np.log(x / x.sum(axis=1, keepdims=True))


def _score(log_p):
  """`exp(mean_x KL(p(y|x) || p(y)))` for row-wise log-probabilities."""
  p = np.exp(log_p)
  with np.errstate(divide="ignore"):
    log_marginal = np.log(p.mean(axis=0))
  # 0 log 0 = 0: classes a row gives no probability add nothing to its KL.
  with np.errstate(invalid="ignore"):  # -inf - -inf where no row has the class
    terms = np.where(p > 0, p * (log_p - log_marginal), 0.0)
  return float(math.exp(terms.sum(axis=1).mean()))


def classifier_score(predictions, from_logits=True) -> float:
  """The Inception Score formula (Salimans et al., 2016) with any classifier.

  `exp(E_x KL(p(y|x) || p(y)))`, where `p(y)` is the mean of `p(y|x)` over the given
  rows. It lies in `[1, C]`: 1 when every row predicts the same distribution, `C` when
  the predictions are confident and spread evenly over the `C` classes.

  Args:
    predictions: `[N, C]` logits (`from_logits=True`) or probabilities (rows are
      normalised).
    from_logits: whether `predictions` are logits.
  """
  return _score(_log_probabilities(predictions, from_logits))


def classifier_score_splits(predictions, num_splits=10, from_logits=True
                            ) -> Tuple[float, float]:
  """`classifier_score` of each of `num_splits` consecutive equal parts of the rows
  (the last rows that do not fill a part are left out), as (mean, std); the reported
  form of the Inception Score (10 splits of 50,000 images in Salimans et al.)."""
  log_p = _log_probabilities(predictions, from_logits)
  num_splits = int(num_splits)
  if not 1 <= num_splits <= len(log_p):
    raise ValueError(f"`num_splits` must be in [1, {len(log_p)}]; got {num_splits}.")
  size = len(log_p) // num_splits
  scores = [_score(log_p[i * size:(i + 1) * size]) for i in range(num_splits)]
  return float(np.mean(scores)), float(np.std(scores))


def feature_statistics(features) -> Tuple[np.ndarray, np.ndarray]:
  """Mean `[D]` and covariance `[D, D]` (unbiased, `N - 1`) of `[N, D]` features."""
  x = _matrix(features, "features")
  if x.shape[0] < 2:
    raise ValueError(f"a covariance needs at least 2 feature rows; got {x.shape[0]}.")
  return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(matrix):
  """The symmetric square root of a symmetric PSD matrix (negative round-off
  eigenvalues are taken as 0)."""
  values, vectors = np.linalg.eigh(matrix)
  return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """The Frechet distance between `N(mu1, sigma1)` and `N(mu2, sigma2)` (FID when the
  statistics are those of network features; Heusel et al., 2017).

  `|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`. The trace of the matrix square
  root is computed from symmetric matrices only: with `R = S1^(1/2)`, the product
  `S1 S2 = R (R S2 R) R^(-1)` is similar to the symmetric PSD matrix `R S2 R`, so
  `Tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(R S2 R))`. Both square roots come from
  `eigh` in float64, with round-off negative eigenvalues set to 0; this needs no
  invertible covariance (unlike `sqrtm` of the product, which can turn complex or
  fail for the rank-deficient covariances of fewer samples than features). Round-off
  below zero is returned as 0.

  Args:
    mu1, mu2: `[D]` means.
    sigma1, sigma2: `[D, D]` covariances (symmetric PSD; symmetrised here).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  dim = mu1.shape[0] if mu1.ndim == 1 else -1
  if (mu1.ndim != 1 or mu2.shape != (dim,) or s1.shape != (dim, dim)
      or s2.shape != (dim, dim)):
    raise ValueError(f"means must be [D] and covariances [D, D] for one D; got "
                     f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}.")
  s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
  root = _psd_sqrt(s1)
  middle = root @ s2 @ root
  eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
  trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
  diff = mu1 - mu2
  value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt
  return max(0.0, float(value))


def fid_from_features(features_a, features_b) -> float:
  """`frechet_distance` of the Gaussians fitted to two `[N, D]` feature sets."""
  return frechet_distance(*feature_statistics(features_a),
                          *feature_statistics(features_b))


def _polynomial_kernel(x, y):
  """`(x.y / d + 1)^3` for all pairs of rows, `[len(x), len(y)]`."""
  base = x @ y.T / x.shape[1] + 1.0
  return base * base * base  # a tenth of the time of `** 3`


def _kid_subsets(a, b, num_subsets, subset_size, seed):
  """Yields `(rows of a, rows of b, k_aa, k_bb, k_ab)` of KID's random subsets."""
  m = min(int(subset_size), len(a), len(b))
  if m < 2:
    raise ValueError(f"KID needs subsets of at least 2 rows; got {m}.")
  if int(num_subsets) < 1:
    raise ValueError(f"`num_subsets` must be >= 1; got {num_subsets}.")
  if m == len(a) == len(b):
    # Every subset is the whole of both sets: the estimate does not depend on the
    # draw, so one computation gives every subset's value.
    num_subsets = 1
  rng = np.random.default_rng(seed)
  for _ in range(int(num_subsets)):
    rows_a = rng.choice(len(a), m, replace=False)
    rows_b = rng.choice(len(b), m, replace=False)
    x, y = a[rows_a], b[rows_b]
    yield (rows_a, rows_b, _polynomial_kernel(x, x), _polynomial_kernel(y, y),
           _polynomial_kernel(x, y))


def _mmd2(k_xx, k_yy, k_xy):
  """The unbiased `MMD^2` of one subset's kernel matrices."""
  m = len(k_xx)
  within = ((k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))) / (m * (m - 1))
  return within - 2.0 * k_xy.mean()


def kid(features_a, features_b, num_subsets=100, subset_size=1000, seed=0
        ) -> Tuple[float, float]:
  """The kernel inception distance (Binkowski et al., 2018) with any features.

  For each of `num_subsets` subsets, `m = min(subset_size, N_a, N_b)` rows of each set
  are drawn without replacement (a NumPy generator seeded with `seed`), and the
  unbiased estimate of `MMD^2` with the kernel `k(x, y) = (x.y / d + 1)^3` is

      sum_{i != j} k(a_i, a_j) / (m (m - 1)) + sum_{i != j} k(b_i, b_j) / (m (m - 1))
        - 2 sum_{i, j} k(a_i, b_j) / m^2.

  Being unbiased it can be slightly negative for sets from one distribution. When
  both sets have at most `subset_size` rows every subset is the whole of both, and the
  estimate is computed once (std 0).

  Returns:
    (mean, std) over the subsets.
  """
  a = _matrix(features_a, "features_a")
  b = _matrix(features_b, "features_b", columns=a.shape[1])
  values = [_mmd2(k_xx, k_yy, k_xy) for _, _, k_xx, k_yy, k_xy
            in _kid_subsets(a, b, num_subsets, subset_size, seed)]
  return float(np.mean(values)), float(np.std(values))


# ------------------------------------------------------------------ bootstrap
# Resamples of the bootstrap intervals of FID and KID (docs/design.md section 14.2).
BOOTSTRAP_RESAMPLES = 30


def bootstrap_counts(num_rows, num_resamples, rng) -> np.ndarray:
  """int64 `[num_resamples, num_rows]`: how often each row is drawn in each resample
  of `num_rows` rows drawn with replacement (one multinomial draw per resample from
  the NumPy Generator `rng`)."""
  return rng.multinomial(num_rows, np.full(num_rows, 1.0 / num_rows),
                         size=int(num_resamples))


def _resample_counts(len_a, len_b, num_resamples, seed, resample_b):
  """Counts of the rows of both sets in each resample: for each resample, those of a,
  then (if `resample_b`) those of b, drawn from one Generator seeded with `seed`;
  b's rows once each when it is not resampled."""
  if int(num_resamples) < 2:
    raise ValueError(f"a bootstrap needs at least 2 resamples; got {num_resamples}.")
  rng = np.random.default_rng(seed)
  counts_a, counts_b = [], []
  for _ in range(int(num_resamples)):
    counts_a.append(bootstrap_counts(len_a, 1, rng)[0])
    counts_b.append(bootstrap_counts(len_b, 1, rng)[0] if resample_b
                    else np.ones(len_b, np.int64))
  return np.stack(counts_a), np.stack(counts_b)


def _weighted_statistics(x, counts):
  """The mean, unbiased covariance `S` and a factor `A` with `S = A' A` (one row per
  row drawn at least once) of the rows of `x` repeated `counts` times."""
  n = counts.sum()
  mean = counts @ x / n
  drawn = counts > 0
  factor = np.sqrt(counts[drawn] / (n - 1))[:, None] * (x[drawn] - mean)
  return mean, factor.T @ factor, factor


def fid_bootstrap(features_a, features_b, num_resamples=BOOTSTRAP_RESAMPLES, seed=0,
                  resample_b=False, statistics_b=None) -> np.ndarray:
  """FID of bootstrap resamples: float64 `[num_resamples]`.

  Each resample draws the rows of `features_a` (the samples) with replacement, and,
  with `resample_b`, those of `features_b` (the reference) too; the counts come from
  `np.random.default_rng(seed)` (for each resample a's counts, then b's). A resample's
  FID is that of its means and covariances: the network is not run again. The trace
  of the square root takes the cheaper of two equal forms: with `S_a = A' A` (`A` one
  row per distinct row drawn), the eigenvalues of `S_b^(1/2) S_a S_b^(1/2)` (`D x D`,
  the reference's root computed once when b is kept) are, apart from zeros, those of
  `A S_b A'` (`n x n`), which is the one taken when fewer rows than features are drawn.

  Args:
    features_a, features_b: `[N, D]` and `[M, D]` features.
    num_resamples: at least 2.
    seed: the Generator's seed.
    resample_b: also resample the reference set (its own sampling noise, which is
      common to every model compared with one reference, is then included).
    statistics_b: optional `feature_statistics(features_b)`, already computed.
  """
  a = _matrix(features_a, "features_a")
  b = _matrix(features_b, "features_b", columns=a.shape[1])
  if len(a) < 2 or len(b) < 2:
    raise ValueError("a covariance needs at least 2 feature rows of each set.")
  counts_a, counts_b = _resample_counts(len(a), len(b), num_resamples, seed, resample_b)
  mu_b, sigma_b = (feature_statistics(b) if statistics_b is None
                   else (np.asarray(statistics_b[0], np.float64),
                         np.asarray(statistics_b[1], np.float64)))
  sigma_b = (sigma_b + sigma_b.T) / 2
  root_b = None  # the kept reference's square root, when first needed
  values = []
  for w_a, w_b in zip(counts_a, counts_b):
    mu, sigma, factor = _weighted_statistics(a, w_a)
    mu_r, sigma_r = (_weighted_statistics(b, w_b)[:2] if resample_b
                     else (mu_b, sigma_b))
    if len(factor) < a.shape[1]:
      middle = factor @ sigma_r @ factor.T
    else:
      if resample_b:
        root = _psd_sqrt(sigma_r)
      else:
        root = root_b = _psd_sqrt(sigma_b) if root_b is None else root_b
      middle = root @ sigma @ root
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    diff = mu - mu_r
    value = (diff @ diff + np.trace(sigma) + np.trace(sigma_r)
             - 2.0 * np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    values.append(max(0.0, float(value)))
  return np.asarray(values)


def _weighted_sums(kernel, w_row, w_col, same):
  """`[R]` sums of `kernel[i, j]` over the pairs of row copies of R resamples (counts
  `[m, R]`): `w_row' K w_col`, less, within one set, the pairs of two copies of one
  row (`sum_i w_i^2 K_ii`)."""
  sums = np.einsum("ir,ir->r", w_row, kernel @ w_col)
  if same:
    sums -= np.diagonal(kernel) @ (w_row * w_row)
  return sums


def kid_bootstrap(features_a, features_b, num_subsets=100, subset_size=1000, seed=0,
                  num_resamples=BOOTSTRAP_RESAMPLES, resample_seed=0,
                  resample_b=False) -> Tuple[float, float, np.ndarray]:
  """`kid` and the KID of bootstrap resamples, from the same kernel matrices.

  A resample draws the rows of `features_a` with replacement (and, with `resample_b`,
  those of `features_b`), counts from `np.random.default_rng(resample_seed)` as in
  `fid_bootstrap`. Its KID takes the same subsets as `kid`: a subset of the resample
  is the copies of the rows of the original subset, `w_i` copies of row `i`. Its
  unbiased `MMD^2` is the weighted U-statistic over pairs of copies of *distinct*
  rows (the usual treatment of ties when bootstrapping a U-statistic: two copies of
  one row are not a pair of independent draws, and their kernel value `k(x, x)`,
  large for the cubic kernel, would swamp the estimate):

      within = sum_{i != j} w_i w_j K_ij / ((sum w)^2 - sum w^2),
      across = w' K_ab v / (sum w sum v),

  matrix-vector work on the subset's kernel matrices `K` instead of new kernels. A
  subset with fewer than 2 distinct rows drawn in a resample is left out of that
  resample's mean.

  Returns:
    (mean, std) exactly as `kid`, and the float64 `[num_resamples]` resampled KIDs
    (NaN for a resample whose every subset was left out).
  """
  a = _matrix(features_a, "features_a")
  b = _matrix(features_b, "features_b", columns=a.shape[1])
  counts_a, counts_b = _resample_counts(len(a), len(b), num_resamples, seed=resample_seed,
                                        resample_b=resample_b)
  values, resampled = [], []
  for rows_a, rows_b, k_xx, k_yy, k_xy in _kid_subsets(a, b, num_subsets, subset_size,
                                                       seed):
    values.append(_mmd2(k_xx, k_yy, k_xy))
    w_x = counts_a[:, rows_a].T.astype(np.float64)  # [m, R]
    w_y = counts_b[:, rows_b].T.astype(np.float64)
    n_x, n_y = w_x.sum(axis=0), w_y.sum(axis=0)
    pairs_x = n_x * n_x - (w_x * w_x).sum(axis=0)
    pairs_y = n_y * n_y - (w_y * w_y).sum(axis=0)
    if resample_b:
      within_y = _weighted_sums(k_yy, w_y, w_y, True)
      across = _weighted_sums(k_xy, w_x, w_y, False)
    else:  # b's rows once each: its sums are those of `kid`, and no matrix product
      within_y = np.full(len(n_y), k_yy.sum() - np.trace(k_yy))
      across = k_xy.sum(axis=1) @ w_x
    with np.errstate(divide="ignore", invalid="ignore"):
      mmd = (_weighted_sums(k_xx, w_x, w_x, True) / pairs_x + within_y / pairs_y
             - 2.0 * across / (n_x * n_y))
    resampled.append(np.where((pairs_x > 0) & (pairs_y > 0), mmd, np.nan))
  resampled = np.asarray(resampled)  # [subsets, R]
  kept = np.isfinite(resampled)
  with np.errstate(invalid="ignore"):
    means = np.where(kept, resampled, 0.0).sum(axis=0) / kept.sum(axis=0)
  return float(np.mean(values)), float(np.std(values)), means


def bootstrap_interval(estimate, resampled, level=0.95, floor=None
                       ) -> Dict[str, float]:
  """The normal bootstrap interval of `estimate`: `estimate +- z se`, `se` the standard
  deviation (`ddof=1`) of the finite `resampled` values and `z` the normal quantile of
  `level` (1.96 for 0.95; Efron and Tibshirani, 1993, chapter 13).

  Centred on the estimate rather than on the resampled values: resampling with
  replacement repeats rows, which biases FID upward, and a percentile interval would
  inherit that shift. `floor`, given, bounds the interval
  below (0 for FID, which cannot be negative).

  Returns:
    dict with `se`, `low` and `high` (all None when fewer than 2 values are finite).
  """
  values = np.asarray(resampled, np.float64)
  values = values[np.isfinite(values)]
  if len(values) < 2:
    return {"se": None, "low": None, "high": None}
  if not 0.0 < level < 1.0:
    raise ValueError(f"`level` must lie in (0, 1); got {level}.")
  se = float(np.std(values, ddof=1))
  z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
  low = float(estimate - z * se)
  if floor is not None:
    low = max(float(floor), low)
  return {"se": se, "low": low, "high": float(estimate + z * se)}


def predicted_labels(predictions) -> np.ndarray:
  """int64 `[N]` arg-max class of `[N, C]` logits or probabilities."""
  return np.argmax(_matrix(predictions, "predictions"), axis=1).astype(np.int64)


def _labels(labels, num_classes):
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise ValueError(f"labels must have shape [N]; got {labels.shape}.")
  labels = labels.astype(np.int64)
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f"labels must lie in [0, {num_classes}); got "
                     f"[{labels.min()}, {labels.max()}].")
  return labels


def label_histogram(labels, num_classes) -> np.ndarray:
  """int64 `[C]` count of each class among the `[N]` labels."""
  return np.bincount(_labels(labels, num_classes), minlength=num_classes)


def per_generator_label_histogram(labels, generator_ids, num_generators, num_classes
                                  ) -> np.ndarray:
  """int64 `[K, C]`: how many samples of generator `k` carry label `c`."""
  labels = _labels(labels, num_classes)
  ids = _labels(generator_ids, num_generators)
  if ids.shape != labels.shape:
    raise ValueError(f"one generator id per label needed; got {ids.shape} ids for "
                     f"{labels.shape} labels.")
  joint = np.bincount(ids * num_classes + labels, minlength=num_generators * num_classes)
  return joint.reshape(num_generators, num_classes)


def label_coverage(histogram, min_count=1) -> int:
  """The number of classes that hold at least `min_count` samples."""
  return int(np.count_nonzero(np.asarray(histogram) >= min_count))


def kl_to_uniform(histogram) -> float:
  """`KL(q || uniform) = sum_{c: q_c > 0} q_c log(C q_c)` of a count histogram `[C]`
  (`q` the normalised counts): 0 for a flat histogram, `log C` for one class.

  An empty histogram gives `log C`, the worst value (JSON has no infinity); this is
  the mixture metrics' convention for the reverse KL (docs/design.md section 4).
  """
  counts = np.asarray(histogram, np.float64).reshape(-1)
  total = counts.sum()
  if total <= 0:
    return float(math.log(len(counts)))
  q = counts[counts > 0] / total
  return max(0.0, float(np.sum(q * np.log(q * len(counts)))))


def stacked_mnist_modes(digits) -> np.ndarray:
  """int64 `[N]` mode ids `100 a + 10 b + c` of `[N, 3]` digits `(a, b, c)`, one per
  colour channel in channel order."""
  digits = np.asarray(digits)
  if digits.ndim != 2 or digits.shape[1] != 3:
    raise ValueError(f"digits must have shape [N, 3]; got {digits.shape}.")
  digits = _labels(digits.reshape(-1), 10).reshape(-1, 3)
  return digits @ np.array([100, 10, 1], np.int64)


def stacked_mnist_metrics(digits) -> Dict[str, object]:
  """Modes covered and the KL to uniform over the 1000 Stacked-MNIST modes.

  As in PacGAN (Lin et al., 2018): a mode is covered when at least one sample has its
  digit triple, and `mode_kl` is `KL(q || uniform)` of the samples' mode histogram `q`
  over all 1000 modes. Since the uniform law over triples is the product of three
  uniform digits, `mode_kl` splits exactly into the KLs of the three channels' digit
  histograms to uniform (`channel_kl`: some digits made too often) plus the KL of `q`
  to the product of its channel marginals (`channel_dependence`, the total
  correlation: the digits of one image not drawn independently).

  Returns:
    dict with `modes` (covered, of 1000), `mode_kl`, `channel_kl` (three floats),
    `channel_dependence`, `num_samples` and `mode_histogram` (1000 counts, mode
    `100 a + 10 b + c` at that index).
  """
  histogram = np.bincount(stacked_mnist_modes(digits), minlength=STACKED_MNIST_MODES)
  marginals = _channel_marginals(histogram)
  return {"num_samples": int(histogram.sum()),
          "modes": label_coverage(histogram),
          "mode_kl": kl_to_uniform(histogram),
          "channel_kl": [kl_to_uniform(m) for m in marginals],
          "channel_dependence": _total_correlation(histogram, marginals),
          "mode_histogram": [int(c) for c in histogram]}


def _channel_marginals(histogram):
  """The three channels' digit histograms `[10]` of a 1000-mode histogram."""
  cube = np.asarray(histogram, np.float64).reshape(10, 10, 10)
  return [cube.sum(axis=(1, 2)), cube.sum(axis=(0, 2)), cube.sum(axis=(0, 1))]


def _total_correlation(histogram, marginals) -> float:
  """`KL(q || q_0 q_1 q_2)` of the normalised 1000-mode histogram `q` to the product
  of its channel histograms `marginals` (`_channel_marginals`); 0 when empty."""
  cube = np.asarray(histogram, np.float64).reshape(10, 10, 10)
  total = cube.sum()
  if total <= 0:
    return 0.0
  q = cube / total
  m0, m1, m2 = (m / total for m in marginals)
  product = m0[:, None, None] * m1[None, :, None] * m2[None, None, :]
  held = q > 0
  return max(0.0, float(np.sum(q[held] * np.log(q[held] / product[held]))))
