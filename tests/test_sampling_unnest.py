"""Tests of the nested-results helpers on this package's result structures."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.sampling import joint
from tf_stackelberg.sampling import unnest
from tf_stackelberg.sampling.samplers import ddls
from tf_stackelberg.sampling.samplers import mh
from tf_stackelberg.sampling.wang_landau import WangLandau


def energy_fn(z, k=0):
  return 0.5 * tf.reduce_sum(tf.square(z), axis=-1) + tf.cast(k, z.dtype)


def test_fields_of_metropolis_hastings_follow_accepted_results_only():
  kernel = mh.make_mh_kernel(energy_fn)
  z = tf.random.stateless_normal([6, 2], seed=[1, 1])
  _, results = kernel.one_step(z, kernel.bootstrap_results(z), seed=[2, 2])
  # The current state's density, not the proposal's.
  assert (unnest.get_outermost(results, 'target_log_prob') is
          results.accepted_results.target_log_prob)
  assert unnest.get_outermost(results, 'is_accepted') is results.is_accepted
  assert (unnest.get_innermost(results, 'log_acceptance_correction') is
          results.accepted_results.log_acceptance_correction)
  assert unnest.get_outermost(results, 'theta') is None
  assert unnest.get_outermost(results, 'theta', default=3) == 3
  assert unnest.get_outermost(None, 'theta') is None


def test_joint_wang_landau_results_nest_three_kernels_deep():
  kernel = joint.JointGeneratorKernel(
      energy_fn, 2, lambda e: WangLandau(e, 0., 5., num_bins=5, step_size=0.3))
  state = [tf.constant([0, 1, 1]), tf.zeros([3, 2])]
  _, results = kernel.one_step(state, kernel.bootstrap_results(state),
                               seed=[3, 3])
  wl = results.inner_results
  assert unnest.get_outermost(results, 'theta') is wl.theta
  assert unnest.get_outermost(results, 'energy') is wl.energy
  # The joint kernel's own seed is outermost, the inner MALA's innermost.
  assert unnest.get_outermost(results, 'seed') is results.seed
  assert (unnest.get_innermost(results, 'is_accepted') is
          wl.inner_results.is_accepted)
  assert (unnest.get_outermost(results, 'target_log_prob') is
          wl.inner_results.accepted_results.target_log_prob)


def test_replace_outermost_rewrites_present_fields_and_ignores_others():
  kernel = tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(
      lambda z: -energy_fn(z), step_size=0.1)
  z = tf.zeros([4, 2])
  results = kernel.bootstrap_results(z)
  new = unnest.replace_outermost(results, target_log_prob=tf.ones([4]),
                                 not_a_field=7)
  np.testing.assert_array_equal(new.accepted_results.target_log_prob,
                                np.ones(4))
  assert new.accepted_results.grads_target_log_prob is (
      results.accepted_results.grads_target_log_prob)
  # Unadjusted Langevin reports no acceptance.
  ula = ddls.make_ddls_kernel(energy_fn, 0.1)
  assert unnest.get_outermost(ula.bootstrap_results(z), 'is_accepted') is None
