"""Latent-space energy of a trained GAN and discriminator calibration.

A generator ``G`` with latent prior ``p0 = N(0, I)`` and a discriminator whose
logit ``d`` approximates ``log p_data(x) / p_G(x)`` define an energy on the
latent space,

```none
E(z, k) = -log p0(z) - d_c(G_k(z)),        d_c = a * d + b,
```

whose Boltzmann density ``exp(-E)`` pushed through the generator corrects the
generator's samples toward the data distribution when ``d_c`` is accurate.
``-log p0`` keeps its normalising constant (``D/2 log 2 pi`` for a latent of
``D`` numbers), so energies are comparable with the ranges quoted in the
literature.

The GAN enters only through two callables, so this module does not depend on
any particular model class:

* ``generate_fn(z, k) -> x``: ``z`` float ``[B, latent_dim]``, ``k`` int32
  ``[B]`` (the generator index; single-generator models ignore it).
* ``logit_fn(x) -> [B]``: discriminator logits (a trailing axis of size one is
  accepted and squeezed).
"""

import math

import numpy as np
import tensorflow as tf

__all__ = [
    'fit_calibration',
    'make_energy_fn',
    'standard_normal_log_prob',
]

_HALF_LOG_TWO_PI = 0.5 * math.log(2. * math.pi)


def standard_normal_log_prob(z):
  """Log density of ``N(0, I)`` at each row of ``z`` (all non-leading axes).

  Args:
    z: float `Tensor` of shape `[B, ...]`.

  Returns:
    `Tensor` of shape `[B]`, including the normalising constant.
  """
  z = tf.convert_to_tensor(z)
  flat = tf.reshape(z, [tf.shape(z)[0], -1])
  dim = tf.cast(tf.shape(flat)[-1], z.dtype)
  return (-0.5 * tf.reduce_sum(tf.square(flat), axis=-1)
          - dim * tf.constant(_HALF_LOG_TWO_PI, z.dtype))


def make_energy_fn(generate_fn, logit_fn, calibration=None, name=None):
  """Builds `energy(z, k) = -log N(z; 0, I) - (a * logit_fn(generate_fn(z, k)) + b)`.

  Args:
    generate_fn: callable `(z, k) -> x` as described in the module docstring.
    logit_fn: callable `x -> logits` with `B` logits for a batch of `B`.
    calibration: optional pair `(a, b)` (e.g. from `fit_calibration`); the
      default `None` means `(1, 0)`, i.e. the raw logit.
    name: optional name scope for the ops.

  Returns:
    `energy(z, k)`: `z` float `[B, latent_dim]`; `k` int `[B]` or a scalar
    (broadcast to every row). Returns the energies, shape `[B]`, dtype of `z`.
    The returned callable carries the calibration as attribute `calibration`.
  """
  if calibration is None:
    scale, shift = 1., 0.
  else:
    scale, shift = calibration
  scale = float(scale)
  shift = float(shift)

  def energy(z, k):
    with tf.name_scope(name or 'latent_energy'):
      z = tf.convert_to_tensor(z)
      batch = tf.shape(z)[:1]
      k = tf.broadcast_to(tf.cast(k, tf.int32), batch)
      logits = logit_fn(generate_fn(z, k))
      logits = tf.reshape(tf.cast(logits, z.dtype), batch)
      critic = scale * logits + shift
      return -standard_normal_log_prob(z) - critic

  energy.calibration = (scale, shift)
  return energy


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
