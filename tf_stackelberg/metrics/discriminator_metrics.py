"""How well a discriminator separates and how well its calibrated logit is a
probability: ROC AUC with its standard error, expected calibration error, the
logistic loss, and the importance resampling of the target test (docs/design.md
section 14.1). Plain NumPy functions of logits and labels.

Example:
  real, fake = np.array([2.0, 1.0]), np.array([0.5, -1.0])
  roc_auc(real, fake)                       # 1.0: every real above every fake
  p = sigmoid(np.concatenate([real, fake]))
  expected_calibration_error(p, np.array([1, 1, 0, 0]), num_bins=2)
"""

import numpy as np

__all__ = [
    'ECE_BINS',
    'auc_standard_error',
    'calibration_error_floor',
    'expected_calibration_error',
    'gumbel_max_choices',
    'logistic_loss',
    'paired_kid_difference',
    'roc_auc',
    'sigmoid',
    'weights_ess',
]

#: Bins of the expected calibration error (equal-mass, see
#: `expected_calibration_error`).
ECE_BINS = 15


def sigmoid(x):
  """`1 / (1 + exp(-x))` in float64, without overflow."""
  x = np.asarray(x, np.float64)
  return 0.5 * (1.0 + np.tanh(0.5 * x))


def roc_auc(real_scores, fake_scores):
  """The area under the ROC curve of `real` (positives) against `fake` (negatives).

  The Mann-Whitney statistic: the probability that a random real score is above a
  random fake one, ties counting one half; computed from mid-ranks in
  `O(n log n)`.

  Args:
    real_scores: `[n_real]` scores of the positives (e.g. logits on real data).
    fake_scores: `[n_fake]` scores of the negatives.

  Returns:
    A float in [0, 1]: 1 for perfect separation, about 0.5 for identical
    distributions.

  Raises:
    ValueError: an empty set or a non-finite score.
  """
  real = _scores(real_scores, "real_scores")
  fake = _scores(fake_scores, "fake_scores")
  both = np.concatenate([real, fake])
  order = np.argsort(both, kind="mergesort")
  ranks = np.empty(len(both), np.float64)
  sorted_values = both[order]
  # Mid-ranks: every member of a run of equal values gets the run's mean rank.
  starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
  ends = np.r_[starts[1:], len(both)]
  mid = (starts + ends + 1) / 2.0  # ranks are 1-based
  ranks[order] = np.repeat(mid, ends - starts)
  n_real, n_fake = len(real), len(fake)
  u = ranks[:n_real].sum() - n_real * (n_real + 1) / 2.0
  return float(u / (n_real * n_fake))


def auc_standard_error(auc, n_real, n_fake):
  """The standard error of an AUC estimate (Hanley and McNeil, 1982).

  `Q1 = A / (2 - A)`, `Q2 = 2 A^2 / (1 + A)`,
  `SE^2 = (A (1 - A) + (n_real - 1)(Q1 - A^2) + (n_fake - 1)(Q2 - A^2)) /
  (n_real n_fake)`. At `A = 0.5` it is close to the exact null value
  `sqrt((n_real + n_fake + 1) / (12 n_real n_fake))`.
  """
  a = float(auc)
  q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
  variance = (a * (1.0 - a) + (n_real - 1) * (q1 - a * a)
              + (n_fake - 1) * (q2 - a * a)) / (n_real * n_fake)
  return float(np.sqrt(max(variance, 0.0)))


def _equal_mass_bins(probabilities, num_bins):
  """Index arrays of the non-empty bins between the `num_bins`-quantiles of the
  probabilities: equal counts up to ties, which always share a bin."""
  p = np.asarray(probabilities, np.float64)
  inner = np.quantile(p, np.linspace(0.0, 1.0, num_bins + 1)[1:-1])
  index = np.searchsorted(inner, p, side="right")
  return [b for b in (np.flatnonzero(index == i) for i in range(num_bins)) if len(b)]


def expected_calibration_error(probabilities, labels, num_bins=ECE_BINS):
  """`sum_b (n_b / n) |mean(labels_b) - mean(probabilities_b)|` over equal-mass bins.

  The bins lie between the `num_bins`-quantiles of the probabilities, so they hold
  equal counts up to ties (equal probabilities always share a bin): a
  discriminator's probabilities crowd near 0.5, where
  equal-width bins would leave most bins empty and one bin with nearly everything.

  Args:
    probabilities: `[n]` predicted probabilities that the label is 1.
    labels: `[n]` labels in {0, 1}.
    num_bins: bins (at most `n`).

  Returns:
    A float in [0, 1].
  """
  p = np.asarray(probabilities, np.float64).reshape(-1)
  y = np.asarray(labels, np.float64).reshape(-1)
  if len(p) != len(y) or not len(p):
    raise ValueError(f"{len(p)} probabilities and {len(y)} labels: need equal, "
                     "non-zero counts")
  bins = _equal_mass_bins(p, min(int(num_bins), len(p)))
  return float(sum(len(b) * abs(y[b].mean() - p[b].mean()) for b in bins) / len(p))


def calibration_error_floor(probabilities, num_bins=ECE_BINS):
  """The expected ECE of a perfectly calibrated predictor with these probabilities:
  the noise floor of `expected_calibration_error` at this sample size.

  With labels drawn as `Bernoulli(p)`, a bin's label mean minus its probability
  mean has standard deviation `s_b = sqrt(sum_b p (1 - p)) / n_b`; it is about
  normal, so `E |.| = s_b sqrt(2 / pi)`.
  """
  p = np.asarray(probabilities, np.float64).reshape(-1)
  bins = _equal_mass_bins(p, min(int(num_bins), len(p)))
  return float(sum(np.sqrt(np.sum(p[b] * (1 - p[b])) * 2 / np.pi) for b in bins)
               / len(p))


def logistic_loss(real_logits, fake_logits):
  """`mean softplus(-d(real)) + mean softplus(d(fake))`, the discriminator's
  logistic loss (float)."""
  real = np.asarray(real_logits, np.float64)
  fake = np.asarray(fake_logits, np.float64)
  return float(np.mean(np.logaddexp(0.0, -real)) + np.mean(np.logaddexp(0.0, fake)))


def gumbel_max_choices(logits, gumbels, sizes):
  """Importance resampling of nested candidate sets, coupled.

  Row `i` holds the log-weights of `N_max` candidates; for every `N` in `sizes`
  the choice among the first `N` is `argmax_j (logits[i, j] + gumbels[i, j])`, a
  draw from `softmax(logits[i, :N])` (the Gumbel-max trick). The same noise serves
  every `N`, so the choices at different `N` are coupled: where the extra
  candidates do not win, the choice is the same.

  Args:
    logits: `[M, N_max]` log-weights (the calibrated logits `d_c`).
    gumbels: `[M, N_max]` standard Gumbel noise.
    sizes: the `N`s, each in `[1, N_max]`.

  Returns:
    `{N: int64 [M]}` chosen columns.
  """
  scores = np.asarray(logits, np.float64) + np.asarray(gumbels, np.float64)
  return {int(n): np.argmax(scores[:, :int(n)], axis=1) for n in sizes}


def weights_ess(logits):
  """The effective sample size `(sum w)^2 / sum w^2` of `w = exp(logits)` per row
  of `[M, N]` log-weights: `N` for a flat discriminator, 1 when one candidate
  takes all the weight. Returns `[M]`."""
  x = np.asarray(logits, np.float64)
  x = x - x.max(axis=1, keepdims=True)
  w = np.exp(x)
  return w.sum(1) ** 2 / np.sum(w * w, axis=1)


def _cubic_kernel(x, y):
  """`(x.y / d + 1)^3` for all pairs of rows, the kernel of KID."""
  base = x @ y.T / x.shape[1] + 1.0
  return base * base * base


def paired_kid_difference(features_a, features_b, real_features, num_blocks=20,
                          chunk=2000):
  """`KID(a) - KID(b)` on all rows, with its block-jackknife standard error.

  Rows `i` of `a` and `b` belong together (the picks of one output at two numbers
  of candidates). Each KID is the unbiased `MMD^2` of all `n` rows against all real
  rows with KID's kernel `(x.y / d + 1)^3`; the term of the real rows alone cancels
  in the difference. The standard error is the jackknife's over `num_blocks`
  contiguous blocks of output rows, each left out in turn (both sets together, so
  the pairing is kept): the error of the difference given the real reference set.

  Returns:
    `(difference, standard error)`.
  """
  a = np.asarray(features_a, np.float64)
  b = np.asarray(features_b, np.float64)
  real = np.asarray(real_features, np.float64)
  if a.shape != b.shape:
    raise ValueError(f"paired features need equal shapes, got {a.shape} and {b.shape}")
  n = len(a)
  num_blocks = min(int(num_blocks), n // 2)
  if num_blocks < 2:
    raise ValueError(f"the jackknife needs at least 4 paired rows; got {n}")
  # Per row: its kernel with the real rows (mean) and with the other rows (sum).
  cross = [np.concatenate([_cubic_kernel(x[i:i + chunk], real).mean(axis=1)
                           for i in range(0, n, chunk)]) for x in (a, b)]
  within = []
  for x in (a, b):
    k = _cubic_kernel(x, x)
    np.fill_diagonal(k, 0.0)
    within.append(k)
  blocks = np.array_split(np.arange(n), num_blocks)

  def difference(keep):
    m = len(keep)
    values = []
    for k, c in zip(within, cross):
      values.append(k[np.ix_(keep, keep)].sum() / (m * (m - 1)) - 2 * c[keep].mean())
    return values[0] - values[1]

  full = difference(np.arange(n))
  left_out = np.array([difference(np.setdiff1d(np.arange(n), block))
                       for block in blocks])
  g = len(blocks)
  se = np.sqrt((g - 1) / g * np.sum((left_out - left_out.mean()) ** 2))
  return float(full), float(se)


def _scores(values, name):
  values = np.asarray(values, np.float64).reshape(-1)
  if not len(values):
    raise ValueError(f"`{name}` is empty")
  if not np.all(np.isfinite(values)):
    raise ValueError(f"`{name}` holds non-finite values")
  return values
