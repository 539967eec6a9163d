"""Tests of the weighted reservoirs and of the weight normalisation.

Statistical checks use four standard errors of multinomial frequencies over
independent chains.
"""

import numpy as np
import tensorflow as tf

from tf_stackelberg.sampling import estimators


def test_reservoir_keeps_each_offered_state_with_probability_by_weight():
  # Every chain is offered the states 0..4 with weights w; afterwards it
  # holds state s with probability w_s / sum w, and the log of sum w.
  num_chains = 20000
  weights = np.array([1., 0., 4., 2., 3.])
  reservoir = estimators.empty_reservoir(tf.fill([num_chains], -1),
                                         tf.zeros([num_chains]))
  with np.errstate(divide='ignore'):
    log_weights = np.log(weights).astype(np.float32)  # -inf: weight zero
  for s, log_w in enumerate(log_weights):
    reservoir = estimators.update_reservoir(
        reservoir, tf.fill([num_chains], s), tf.fill([num_chains], float(s)),
        tf.fill([num_chains], log_w), seed=[s, 1])
  np.testing.assert_allclose(reservoir.log_total, np.log(weights.sum()),
                             rtol=1e-6)
  kept = reservoir.state.numpy()
  np.testing.assert_array_equal(reservoir.energy, kept.astype(np.float32))
  p = weights / weights.sum()
  freq = np.bincount(kept, minlength=5) / num_chains
  np.testing.assert_array_less(np.abs(freq - p),
                               4 * np.sqrt(p * (1 - p) / num_chains) + 1e-12)


def test_reservoir_of_nested_states_selects_rows_together():
  reservoir = estimators.empty_reservoir([tf.zeros([3], tf.int32),
                                          tf.zeros([3, 2])], tf.zeros([3]))
  state = [tf.constant([1, 2, 3]), tf.constant([[1., 1.], [2., 2.], [3., 3.]])]
  log_weight = tf.constant([0., -np.inf, 0.])
  reservoir = estimators.update_reservoir(reservoir, state, tf.ones([3]),
                                          log_weight, seed=[1, 2])
  # The first offer with a positive weight is always kept; zero weight never.
  np.testing.assert_array_equal(reservoir.state[0], [1, 0, 3])
  np.testing.assert_array_equal(reservoir.state[1],
                                [[1., 1.], [0., 0.], [3., 3.]])


def test_normalized_log_weights_per_generator_and_kish_ess():
  log_w = tf.math.log(tf.constant([1., 3., 2., 2., 4.]))
  k = tf.constant([0, 0, 1, 1, 2])
  flat = np.exp(estimators.normalized_log_weights(log_w).numpy())
  np.testing.assert_allclose(flat, np.array([1., 3., 2., 2., 4.]) / 12.,
                             rtol=1e-6)
  grouped = np.exp(estimators.normalized_log_weights(
      log_w, k, num_generators=3, group_by_generator=True).numpy())
  np.testing.assert_allclose(grouped, [1 / 12, 3 / 12, 1 / 6, 1 / 6, 1 / 3],
                             rtol=1e-6)
  np.testing.assert_allclose(estimators.kish_ess(log_w),
                             12.**2 / (1 + 9 + 4 + 4 + 16), rtol=1e-6)
