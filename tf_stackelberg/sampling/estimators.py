"""Turning weighted chain states into samples: reservoirs, weights, resampling.

The Wang-Landau chains sample a flattened law `pi_theta`; a state `x` visited
under the bias `theta` carries the importance weight `w = exp(theta[J(E(x))])`
toward `pi ~ exp(-E)`. Rather than keeping whole trajectories, every chain
keeps a weighted reservoir of size one (`Reservoir`): after the states
`x_1..x_t` have been offered with weights `w_1..w_t`, it holds one of them,
drawn with probability `w_s / W_t`, and the total `W_t = sum_s w_s` (Chao's
scheme: the new state replaces the kept one with probability `w_t / W_t`). The
chains' reservoirs are then combined into samples of `pi` by drawing
`num_samples` of them with probabilities proportional to the chains' totals
`W` (`normalized_log_weights`, `weighted_resample`, systematic): a draw is then
state `s` of chain `c` with probability `w_{c,s} / sum_{c,s} w_{c,s}`, i.e. the
self-normalised importance sampling estimator over every collected state.
"""

import collections
import functools

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

__all__ = [
    'Reservoir',
    'empty_reservoir',
    'kish_ess',
    'normalized_log_weights',
    'update_reservoir',
    'weighted_resample',
]


class Reservoir(
    collections.namedtuple('Reservoir', ['log_total', 'state', 'energy'])):
  """One weighted reservoir per chain.

  Attributes:
    log_total: float `[chains]`, log of the summed weights offered so far
      (`-inf` before the first offer).
    state: the kept states (a nest of `[chains, ...]`, like the chain state).
    energy: float `[chains]`, the energies of the kept states.
  """
  __slots__ = ()


def empty_reservoir(state, energy):
  """A reservoir holding `state` with zero total weight."""
  return Reservoir(tf.fill(tf.shape(energy), tf.constant(-np.inf,
                                                         energy.dtype)),
                   state, energy)


def _select_rows(take, new, old):
  take = tf.reshape(take, tf.concat(
      [tf.shape(take), tf.ones([tf.rank(new) - 1], tf.int32)], axis=0))
  return tf.where(take, new, old)


def update_reservoir(reservoir, state, energy, log_weight, seed):
  """Offers `state` (energies `energy`) with log weights `log_weight`.

  Each chain keeps the new state with probability `w / W`, `W` being the new
  total; a weight of zero (`log_weight = -inf`) leaves the chain's reservoir
  unchanged.

  Args:
    reservoir: `Reservoir`.
    state: nest of `[chains, ...]` states, like `reservoir.state`.
    energy: float `[chains]`.
    log_weight: float `[chains]`.
    seed: stateless seed of the keep-or-not draws.

  Returns:
    The updated `Reservoir`.
  """
  log_total = tf.reduce_logsumexp(
      tf.stack([reservoir.log_total, log_weight]), axis=0)
  prob = tf.where(tf.math.is_finite(log_total),
                  tf.exp(log_weight - log_total), tf.zeros_like(log_total))
  take = tf.random.stateless_uniform(tf.shape(prob), seed=seed,
                                     dtype=prob.dtype) < prob
  return Reservoir(
      log_total,
      tf.nest.map_structure(functools.partial(_select_rows, take), state,
                            reservoir.state),
      tf.where(take, energy, reservoir.energy))


def normalized_log_weights(log_weights, k=None, num_generators=1,
                           group_by_generator=False, generator_log_prior=None):
  """Self-normalised log weights (their `logsumexp` is 0).

  With `group_by_generator` (chains of fixed generator), the weights are
  normalised within each generator and every generator gets total mass
  `1 / K`, so that resampling keeps the generators' shares of the chains
  (uniform when the chains' indices are), or `p(k)` with a
  `generator_log_prior`.

  Args:
    log_weights: float `[chains]` unnormalised log weights.
    k: int32 `[chains]` generator indices (with `group_by_generator`).
    num_generators: Python int `K`.
    group_by_generator: normalise per generator.
    generator_log_prior: optional `log p(k)` of the `K` generators, the
      generators' total masses with `group_by_generator` (default uniform).

  Returns:
    float `[chains]`.
  """
  log_w = log_weights
  if group_by_generator and num_generators > 1:
    norm = tf.math.unsorted_segment_max(log_w, k, num_generators)
    norm = tf.where(tf.math.is_finite(norm), norm, tf.zeros_like(norm))
    shifted = tf.exp(log_w - tf.gather(norm, k))
    totals = tf.math.unsorted_segment_sum(shifted, k, num_generators)
    log_w = (log_w - tf.gather(norm, k) - tf.math.log(tf.gather(totals, k)))
    if generator_log_prior is not None:
      log_w += tf.gather(tf.constant(generator_log_prior, log_w.dtype), k)
  return log_w - tf.reduce_logsumexp(log_w)


def kish_ess(log_weights):
  """Kish effective sample size `(sum w)^2 / sum w^2` of log weights."""
  log_w = log_weights - tf.reduce_logsumexp(log_weights)
  return tf.exp(-tf.reduce_logsumexp(2. * log_w))


def weighted_resample(samples, log_weights, num_samples, seed):
  """Systematic resampling of `samples` (a nest of `[N, ...]`) by weight.

  One uniform offset `U` places `num_samples` evenly spaced points
  `(i + U) / num_samples` on the weights' cumulative distribution; each point
  takes the state it falls on. State `s` is drawn `n p_s` times in expectation
  (unbiased, as multinomial draws are) and always `floor(n p_s)` or
  `ceil(n p_s)` times, so no state is lost or repeated by chance: `N` equally
  weighted states drawn `N` times come back once each, where multinomial draws
  would keep about `1 - 1/e = 63%` of them and repeat the rest, which shows as a
  loss of recall and coverage in the samples (Douc, Cappe and Moulines,
  "Comparison of resampling schemes for particle filtering", 2005).

  Args:
    samples: `Tensor` or nest of `Tensor`s with a common leading axis `N`.
    log_weights: float `[N]` (unnormalised) log weights.
    num_samples: number of draws; an int or a scalar int32 `Tensor`.
    seed: stateless seed.

  Returns:
    The nest of `samples` gathered at the `num_samples` drawn indices (in the
    order of the states).
  """
  seed = tfp.random.sanitize_seed(seed)
  log_w = tf.cast(tf.convert_to_tensor(log_weights), tf.float64)
  cdf = tf.cumsum(tf.exp(log_w - tf.reduce_logsumexp(log_w)))
  n = tf.cast(num_samples, tf.float64)
  points = (tf.range(n, dtype=tf.float64)
            + tf.random.stateless_uniform([], seed, dtype=tf.float64)) / n
  index = tf.searchsorted(cdf, points, side='right', out_type=tf.int32)
  index = tf.minimum(index, tf.size(cdf, out_type=tf.int32) - 1)  # rounding at 1
  return tf.nest.map_structure(lambda s: tf.gather(s, index), samples)
