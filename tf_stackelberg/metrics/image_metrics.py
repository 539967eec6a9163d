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
* `label_histogram`, `per_generator_label_histogram`, `label_coverage`,
  `kl_to_uniform`: how predicted labels spread over the classes (and generators).
* `stacked_mnist_modes`, `stacked_mnist_metrics`: the 1000 digit-triple modes of
  Stacked-MNIST.
"""

import math
from typing import Dict, Tuple

import numpy as np

__all__ = [
    "classifier_score",
    "classifier_score_splits",
    "feature_statistics",
    "frechet_distance",
    "fid_from_features",
    "kid",
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
  values = []
  for _ in range(int(num_subsets)):
    x = a[rng.choice(len(a), m, replace=False)]
    y = b[rng.choice(len(b), m, replace=False)]
    k_xx, k_yy, k_xy = (_polynomial_kernel(x, x), _polynomial_kernel(y, y),
                        _polynomial_kernel(x, y))
    within = ((k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))) / (m * (m - 1))
    values.append(within - 2.0 * k_xy.mean())
  return float(np.mean(values)), float(np.std(values))


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
