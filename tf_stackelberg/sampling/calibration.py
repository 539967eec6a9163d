"""Calibration of the discriminator logit into a log density ratio.

The latent energy assumes that the logit `d(x)` estimates
`log p_data(x) / p_G(x)`. A trained discriminator is usually over- or
under-confident, so the logit is recalibrated as `d_c = a * d + b`, the
logistic regression of held-out real samples (label 1) against generated ones
(label 0) on their logits (Platt scaling, as used by MH-GAN and discriminator
rejection sampling).

* `fit_calibration(real_logits, fake_logits)`: the fit itself, on logits.
* `calibrate(logit_fn, real, fake)`: the fit on the logits of two sets of
  samples; every caller (the sampling command, the export, the benchmark)
  draws its own samples and goes through this function.
"""

import math

import numpy as np

__all__ = [
    'calibrate',
    'fit_calibration',
]


def calibrate(logit_fn, real, fake):
  """`(a, b)` of `d_c = a * d + b` from real and generated samples.

  Args:
    logit_fn: callable `x -> [B]` (or `[B, 1]`) discriminator logits.
    real: held-out data samples, `[N, ...]`.
    fake: generated samples, `[M, ...]`.

  Returns:
    Python floats `(a, b)`; see `fit_calibration`.
  """
  return fit_calibration(np.asarray(logit_fn(real)), np.asarray(logit_fn(fake)))


def fit_calibration(real_logits, fake_logits, l2=1e-6, max_iterations=200,
                    tolerance=1e-10, correct_class_ratio=True):
  """Fits `d_c = a * d + b` by logistic regression of real (1) vs fake (0).

  Newton's method (iteratively reweighted least squares) on the two
  parameters, in float64 numpy, with step halving whenever a full Newton step
  would increase the penalised negative log likelihood. The result is fully
  deterministic.

  Args:
    real_logits: array-like of discriminator logits on held-out real data.
    fake_logits: array-like of discriminator logits on generated data.
    l2: ridge penalty `0.5 * l2 * a**2` on the slope; it keeps the fit finite
      when the two sets are perfectly separable.
    max_iterations: maximum number of Newton iterations.
    tolerance: stop when the largest parameter change falls below this.
    correct_class_ratio: if `True`, subtract `log(n_real / n_fake)` from the
      intercept, so that `d_c` estimates the density ratio
      `log p_data(x) / p_G(x)` even when the two sets have unequal sizes.

  Returns:
    Python floats `(a, b)`.

  Raises:
    ValueError: if either set is empty.
  """
  real = np.asarray(real_logits, np.float64).reshape(-1)
  fake = np.asarray(fake_logits, np.float64).reshape(-1)
  if real.size == 0 or fake.size == 0:
    raise ValueError('Both `real_logits` and `fake_logits` must be non-empty.')
  d = np.concatenate([real, fake])
  y = np.concatenate([np.ones_like(real), np.zeros_like(fake)])
  features = np.stack([d, np.ones_like(d)], axis=-1)
  penalty = np.array([l2, 0.])

  def objective(w):
    eta = features @ w
    # log(1 + exp(eta)) - y * eta, computed stably.
    return (np.sum(np.logaddexp(0., eta) - y * eta)
            + 0.5 * np.sum(penalty * w * w))

  w = np.zeros(2)
  value = objective(w)
  for _ in range(max_iterations):
    eta = features @ w
    p = 0.5 * (1. + np.tanh(0.5 * eta))  # sigmoid without overflow
    grad = features.T @ (p - y) + penalty * w
    curvature = p * (1. - p)
    hessian = (features * curvature[:, None]).T @ features + np.diag(penalty)
    hessian += 1e-12 * np.eye(2)
    direction = np.linalg.solve(hessian, grad)
    step = 1.
    while True:
      candidate = w - step * direction
      candidate_value = objective(candidate)
      if candidate_value <= value or step < 1e-8:
        break
      step *= 0.5
    change = np.max(np.abs(candidate - w))
    w, value = candidate, candidate_value
    if change < tolerance:
      break
  a, b = float(w[0]), float(w[1])
  if correct_class_ratio:
    b -= math.log(real.size / fake.size)
  return a, b
