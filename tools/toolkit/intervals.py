"""Confidence intervals over a few repeated runs (seeds) and comparisons of two means.

A benchmark repeated with n seeds gives n values of a metric; their mean has the
standard error `s / sqrt(n)` (s the sample standard deviation) and, for roughly
normal values, the 95% interval `mean +- t(0.975, n - 1) * s / sqrt(n)` (Student's
t, which is wide for few seeds: 2.78 standard errors for n = 5). Plain NumPy with the
quantiles tabulated, so that the tools need no SciPy.
"""

import math

import numpy as np

# Student's t 97.5% quantiles for 1..30 degrees of freedom (two-sided 95%); the
# normal quantile beyond, where they differ by less than 0.05.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(dof):
  """Student's t 97.5% quantile for `dof` degrees of freedom (NaN below 1)."""
  if dof < 1:
    return float("nan")
  return _T975[dof - 1] if dof <= len(_T975) else 1.960


def mean_interval(values):
  """Mean, standard error and the 95% t-interval of the finite `values`.

  Returns a dict `n, mean, se, half_width, low, high, values`; with one value the
  standard error and the interval are NaN.

  #### Examples

  ```python
  mean_interval([1., 2., 3.])  # mean 2, se 0.577, interval 2 +- 2.48
  ```
  """
  values = [float(v) for v in values]
  finite = np.asarray([v for v in values if math.isfinite(v)], np.float64)
  n = len(finite)
  mean = float(finite.mean()) if n else float("nan")
  se = float(finite.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
  half = t_quantile_975(n - 1) * se if n > 1 else float("nan")
  return dict(n=n, mean=mean, se=se, half_width=half, low=mean - half,
              high=mean + half, values=values)


def compare(candidate, baseline, higher_is_better, num_se=2.):
  """'better', 'worse' or 'tie': `candidate` against `baseline` (`mean_interval`s).

  Better (worse) when the difference of the means, in the metric's good direction,
  exceeds `num_se` standard errors of the difference, `sqrt(se_a^2 + se_b^2)` (the
  seeds of the two are independent); a tie otherwise, and whenever an error is
  unknown.
  """
  se = math.hypot(candidate["se"], baseline["se"])
  diff = candidate["mean"] - baseline["mean"]
  if not higher_is_better:
    diff = -diff
  if not (math.isfinite(se) and math.isfinite(diff)):
    return "tie"
  if diff > num_se * se:
    return "better"
  if diff < -num_se * se:
    return "worse"
  return "tie"
