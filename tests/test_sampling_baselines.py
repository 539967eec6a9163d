"""Tests of the baseline samplers' kernels and of the generator-index moves.

Chains start from the exact target whenever invariance is tested, so the
final states of independent chains are exact draws and the tolerances are
four standard errors of an average of independent values; averages over
whole trajectories use TFP's effective sample size instead of the number of
values.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

from tf_stackelberg.sampling import energy as energy_lib
from tf_stackelberg.sampling import joint as joint_lib
from tf_stackelberg.sampling.samplers import ddls
from tf_stackelberg.sampling.samplers import mh
from tf_stackelberg.sampling.samplers import rep
from tf_stackelberg.sampling.wang_landau import WangLandau

NUM_CHAINS = 4000


def run_chain(kernel, state, num_steps, seed, trace_fn=None):
  @tf.function(autograph=False)
  def run():
    return tfp.mcmc.sample_chain(num_steps, state, kernel=kernel,
                                 trace_fn=trace_fn, seed=seed,
                                 return_final_kernel_results=True)
  return run()


def assert_mean_and_variance(samples, mean, variance):
  """Per coordinate, four standard errors of independent draws."""
  samples = np.asarray(samples, np.float64)
  n = samples.shape[0]
  np.testing.assert_array_less(np.abs(samples.mean(0) - mean),
                               4 * np.sqrt(variance / n))
  np.testing.assert_array_less(np.abs(samples.var(0, ddof=1) - variance),
                               4 * variance * np.sqrt(2. / (n - 1)))


def test_rep_mala_leaves_a_gaussian_invariant():
  mean = np.array([1., -2.])
  scale = np.array([0.5, 2.])

  def energy_fn(z):
    return 0.5 * tf.reduce_sum(tf.square((z - mean) / scale), axis=-1)

  init = np.random.default_rng(0).normal(mean, scale, size=[NUM_CHAINS, 2])
  init = tf.constant(init, tf.float32)
  kernel = rep.make_rep_kernel(energy_fn, step_size=0.3)
  out = run_chain(kernel, init, 10, [1, 1])
  final = out.all_states[-1].numpy()
  assert np.mean(np.abs(final - init.numpy())) > 0.3  # the chains moved
  assert_mean_and_variance(final, mean, scale**2)


@pytest.mark.parametrize('step_size', [0.5, 0.02])
def test_ddls_has_the_known_stationary_variance_of_ula(step_size):
  # On N(0, 1) the Euler-Maruyama chain z' = (1 - s/2) z + sqrt(s) xi is
  # Gaussian with stationary variance 1 / (1 - s/4): an O(s) bias that the
  # Metropolis correction would remove.
  def energy_fn(z):
    return 0.5 * tf.reduce_sum(tf.square(z), axis=-1)

  kernel = ddls.make_ddls_kernel(energy_fn, step_size=step_size)
  assert not kernel.is_calibrated
  # Start in the exact stationary law of the discretised chain.
  stationary = 1. / (1. - step_size / 4.)
  init = np.random.default_rng(1).normal(0., np.sqrt(stationary),
                                         size=[NUM_CHAINS, 1])
  out = run_chain(kernel, tf.constant(init, tf.float32), 20, [2, 2])
  final = out.all_states[-1].numpy()
  assert_mean_and_variance(final, 0., stationary)
  if step_size == 0.5:  # the bias is resolved at this sample size
    assert abs(final.var(ddof=1) - 1.) > 4 * np.sqrt(2. / NUM_CHAINS)


def test_ddls_is_the_euler_maruyama_update_of_tfp_uncalibrated_langevin():
  # One step must be z + (s / 2) grad log pi(z) + sqrt(s) xi, as the former
  # hand-written kernel computed it. A flat target (zero gradient) reveals
  # the noise xi that TFP draws for a seed; the same seed on a Gaussian
  # target must then give the full update with that noise.
  step_size = 0.3
  mean = np.array([1., -2., 0.5])
  z = tf.random.stateless_normal([64, 3], seed=[1, 2])

  def gaussian_energy(x):
    return 0.5 * tf.reduce_sum(tf.square(x - mean), axis=-1)

  def flat_energy(x):
    return 0. * tf.reduce_sum(x, axis=-1)

  def one_step(energy_fn):
    kernel = ddls.make_ddls_kernel(energy_fn, step_size=step_size)
    assert isinstance(kernel, tfp.mcmc.UncalibratedLangevin)
    assert not kernel.is_calibrated
    return kernel.one_step(z, kernel.bootstrap_results(z), seed=[3, 4])

  flat_state, _ = one_step(flat_energy)
  noise = (flat_state - z).numpy() / np.sqrt(step_size)
  assert abs(noise.mean()) < 4. / np.sqrt(noise.size)
  assert abs(noise.var() - 1.) < 4. * np.sqrt(2. / noise.size)
  state, results = one_step(gaussian_energy)
  grad_log_pi = mean - z.numpy()
  handwritten = (z.numpy() + 0.5 * step_size * grad_log_pi +
                 np.sqrt(step_size) * noise)
  np.testing.assert_allclose(state, handwritten, rtol=1e-5, atol=1e-5)
  # The results cache the density and its gradient at the new state.
  np.testing.assert_allclose(results.target_log_prob, -gaussian_energy(state),
                             rtol=1e-6)
  np.testing.assert_allclose(results.grads_target_log_prob[0],
                             mean - state.numpy(), rtol=1e-5, atol=1e-6)


def linear_gan(direction, offsets=None):
  """`G_k(z) = z + offsets[k]`, `d(x) = direction . x`: a known energy."""
  direction = tf.constant(direction, tf.float32)

  def generate_fn(z, k):
    if offsets is None:
      return z
    return z + tf.gather(tf.constant(offsets, tf.float32), k)

  def logit_fn(x):
    return tf.linalg.matvec(x, direction)

  return generate_fn, logit_fn


def test_mh_log_accept_ratio_is_the_discriminator_difference():
  generate_fn, logit_fn = linear_gan([0.7, -1.2])
  energy_fn = energy_lib.make_energy_fn(generate_fn, logit_fn)
  kernel = mh.make_mh_kernel(lambda z: energy_fn(z, 0))
  assert isinstance(kernel, tfp.mcmc.MetropolisHastings)
  assert isinstance(kernel.inner_kernel, mh.IndependenceProposal)
  assert kernel.is_calibrated and not kernel.inner_kernel.is_calibrated
  z = tf.random.stateless_normal([64, 2], seed=[3, 3])
  results = kernel.bootstrap_results(z)
  _, results = kernel.one_step(z, results, seed=[4, 4])
  proposed = results.proposed_state
  want = logit_fn(generate_fn(proposed, 0)) - logit_fn(generate_fn(z, 0))
  np.testing.assert_allclose(results.log_accept_ratio, want, rtol=1e-5,
                             atol=1e-5)
  # The proposal reports the prior-density correction log p0(z) - log p0(z').
  np.testing.assert_allclose(
      results.proposed_results.log_acceptance_correction,
      energy_lib.standard_normal_log_prob(z) -
      energy_lib.standard_normal_log_prob(proposed), rtol=1e-6, atol=1e-6)


def _expected_min_one_exp(c, m):
  """E[min(1, exp(c Z + m))] for Z ~ N(0, 1), c > 0."""
  return (stats.norm.cdf(m / c) +
          math.exp(m + 0.5 * c * c) * stats.norm.cdf(-c - m / c))


def test_mh_acceptance_rate_follows_its_formula():
  # From z = 0 with d(x) = c x the acceptance probability is
  # E[min(1, exp(c z'))], z' ~ N(0, 1).
  c = 1.
  generate_fn, logit_fn = linear_gan([c])
  energy_fn = energy_lib.make_energy_fn(generate_fn, logit_fn)
  kernel = mh.make_mh_kernel(lambda z: energy_fn(z, 0))
  num = 20000
  z = tf.zeros([num, 1])
  _, results = kernel.one_step(z, kernel.bootstrap_results(z), seed=[5, 5])
  p = _expected_min_one_exp(c, 0.)
  rate = np.mean(results.is_accepted.numpy())
  assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / num)


def test_joint_mh_acceptance_rate_follows_its_formula():
  # State [k, z] with proposals k' uniform, z' ~ N(0, 1); from (0, 0) with
  # d(G_k(z)) = c (z + b_k) the log ratio is c z' + c (b_k' - b_0).
  c, offsets = 0.8, np.array([[0.], [1.5], [-2.]])
  generate_fn, logit_fn = linear_gan([c], offsets)
  energy_fn = energy_lib.make_energy_fn(generate_fn, logit_fn)
  kernel = mh.make_mh_kernel(energy_fn, num_generators=3)
  num = 20000
  state = [tf.zeros([num], tf.int32), tf.zeros([num, 1])]
  (k, _), results = kernel.one_step(state, kernel.bootstrap_results(state),
                                    seed=[6, 6])
  p = np.mean([_expected_min_one_exp(c, c * (b - offsets[0, 0]))
               for b in offsets[:, 0]])
  rate = np.mean(results.is_accepted.numpy())
  assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / num)
  assert set(np.unique(k.numpy())) == {0, 1, 2}


def test_mh_leaves_the_latent_target_invariant():
  # d(x) = mu . x with G(z) = z gives pi(z) = N(mu, I).
  mu = np.array([1., -0.5])
  generate_fn, logit_fn = linear_gan(mu)
  energy_fn = energy_lib.make_energy_fn(generate_fn, logit_fn)
  kernel = mh.make_mh_kernel(lambda z: energy_fn(z, 0))
  init = np.random.default_rng(2).normal(mu, 1., size=[NUM_CHAINS, 2])
  out = run_chain(kernel, tf.constant(init, tf.float32), 5, [7, 7])
  final = out.all_states[-1].numpy()
  assert np.mean(np.any(final != init, axis=-1)) > 0.5
  assert_mean_and_variance(final, mu, 1.)


def test_mh_keeps_a_bimodal_target_invariant_along_whole_trajectories():
  # pi(z) = 0.3 N(2, 1) + 0.7 N(-3, 1), far from the N(0, 1) proposals. From
  # exact draws every state of every trajectory is an exact draw; their
  # averages are correlated along a chain, so the tolerance of each moment is
  # four standard errors with TFP's cross-chain effective sample size.
  weights, means = np.array([0.3, 0.7]), np.array([2., -3.])
  log_w = tf.constant(np.log(weights), tf.float32)

  def energy_fn(z):
    return -tf.reduce_logsumexp(
        log_w - 0.5 * tf.square(z - means) - 0.5 * np.log(2 * np.pi),
        axis=-1)

  rng = np.random.default_rng(14)
  init = rng.normal(means[rng.choice(2, size=NUM_CHAINS, p=weights)], 1.)
  kernel = mh.make_mh_kernel(energy_fn)
  out = run_chain(kernel, tf.constant(init[:, None], tf.float32), 30,
                  [15, 15], trace_fn=lambda _, r: r.is_accepted)
  states = out.all_states[..., 0]
  assert 0.05 < out.trace.numpy().mean() < 0.9  # proposals are accepted
  truths = ((lambda x: x, weights @ means),
            (lambda x: x**2, weights @ (means**2 + 1.)),
            (lambda x: tf.cast(x > 0., x.dtype),
             weights @ stats.norm.cdf(means)))
  for f, truth in truths:
    values = f(states)
    ess = tfp.mcmc.effective_sample_size(
        values, cross_chain_dims=1, filter_beyond_positive_pairs=True).numpy()
    assert ess > 100.
    values = values.numpy()
    se = values.std() / np.sqrt(ess)
    assert abs(values.mean() - truth) < 4. * se, (values.mean(), truth, se)


# ---------------------------------------------------- generator-index moves
# E(z, k) = (z - m_k)^2 / 2 + c_k: z | k ~ N(m_k, 1) and P(k) ~ exp(-c_k).
MEANS_K = np.array([0., 1., -1.])
COSTS_K = np.array([0., 1., 2.])
P_K = np.exp(-COSTS_K) / np.exp(-COSTS_K).sum()


def joint_energy(z, k):
  m = tf.gather(tf.constant(MEANS_K, z.dtype), k)
  c = tf.gather(tf.constant(COSTS_K, z.dtype), k)
  return 0.5 * tf.square(z[:, 0] - m) + c


def exact_joint_draws(num, seed):
  rng = np.random.default_rng(seed)
  k = rng.choice(3, size=num, p=P_K)
  z = rng.normal(MEANS_K[k], 1.)[:, None]
  return tf.constant(k, tf.int32), tf.constant(z, tf.float32)


def assert_k_distribution(k, probs):
  freq = np.bincount(k, minlength=len(probs)) / k.size
  tolerance = 4 * np.sqrt(probs * (1 - probs) / k.size)
  assert np.all(np.abs(freq - probs) <= tolerance), (freq, probs)


def test_generator_move_is_one_metropolis_hastings_step():
  # At fixed z with E(z, k) = z^2 / 2 + c_k, one move from k = 0 proposes k'
  # in {1, 2} with probability 1/2 each and accepts with exp(c_0 - c_k').
  num = 20000

  def energy_fn(z, k):
    return (0.5 * tf.square(z[:, 0]) +
            tf.gather(tf.constant(COSTS_K, tf.float32), k))

  move = tfp.mcmc.MetropolisHastings(joint_lib.GeneratorProposal(
      energy_fn, 3, lambda e: rep.make_rep_kernel(e, step_size=0.5)))
  state = [tf.zeros([num], tf.int32),
           tf.random.stateless_normal([num, 1], seed=[8, 7])]
  (new_k, z), results = move.one_step(state, move.bootstrap_results(state),
                                      seed=[8, 8])
  np.testing.assert_array_equal(z, state[1])  # z does not move
  accept = np.exp(COSTS_K[0] - COSTS_K[1:])
  probs = np.array([1. - 0.5 * accept.sum(), 0.5 * accept[0],
                    0.5 * accept[1]])
  assert_k_distribution(new_k.numpy(), probs)
  np.testing.assert_array_equal(results.is_accepted.numpy(),
                                new_k.numpy() != 0)
  np.testing.assert_allclose(
      results.log_accept_ratio,
      COSTS_K[0] - COSTS_K[results.proposed_state[0].numpy()], rtol=1e-5)
  # The kept latent results are those of the accepted generator: the cached
  # density is -E(z, k) at the new k.
  latent = results.accepted_results.latent_results
  np.testing.assert_allclose(latent.accepted_results.target_log_prob,
                             -energy_fn(z, new_k), rtol=1e-6)


def test_propose_generator_is_uniform_over_the_others():
  k = tf.fill([30000], 1)
  proposed = joint_lib.propose_generator(k, 4, seed=[9, 9]).numpy()
  assert not np.any(proposed == 1)
  assert_k_distribution(proposed, np.array([1 / 3, 0., 1 / 3, 1 / 3]))


@pytest.mark.parametrize('latent', ['mala', 'wl_frozen'])
def test_joint_kernel_leaves_the_joint_target_invariant(latent):
  if latent == 'mala':
    def make_kernel_fn(energy_fn):
      return rep.make_rep_kernel(energy_fn, step_size=0.5)
  else:
    # A Wang-Landau latent kernel with a zero bias that never adapts has the
    # unbiased target; the generator moves go through its refresh path.
    def make_kernel_fn(energy_fn):
      return WangLandau(energy_fn, 0., 6., num_bins=6, step_size=0.5,
                        num_bias_adaptation_steps=0)
  kernel = joint_lib.JointGeneratorKernel(joint_energy, 3, make_kernel_fn)
  assert kernel.is_calibrated == (latent == 'mala')
  k0, z0 = exact_joint_draws(NUM_CHAINS, seed=10)
  out = run_chain(kernel, [k0, z0], 8, [11, 11],
                  trace_fn=lambda _, r: r.generator_is_accepted)
  k, z = (s[-1].numpy() for s in out.all_states)
  assert out.trace.numpy().mean() > 0.1  # generator moves do happen
  assert np.mean(k != k0.numpy()) > 0.2
  assert_k_distribution(k, P_K)
  for j in range(3):
    zj = z[k == j, 0]
    assert abs(zj.mean() - MEANS_K[j]) < 4. / np.sqrt(zj.size)


def test_joint_mh_leaves_the_joint_target_invariant():
  # G_k(z) = z + b_k and d(x) = c x: pi(z | k) = N(c, 1) and
  # P(k) ~ exp(c b_k).
  c, offsets = 0.7, np.array([[0.], [1.], [-1.5]])
  probs = np.exp(c * offsets[:, 0]) / np.exp(c * offsets[:, 0]).sum()
  generate_fn, logit_fn = linear_gan([c], offsets)
  energy_fn = energy_lib.make_energy_fn(generate_fn, logit_fn)
  kernel = mh.make_mh_kernel(energy_fn, num_generators=3)
  rng = np.random.default_rng(12)
  k0 = rng.choice(3, size=NUM_CHAINS, p=probs)
  z0 = rng.normal(c, 1., size=[NUM_CHAINS, 1])
  out = run_chain(kernel, [tf.constant(k0, tf.int32), tf.constant(z0,
                                                                  tf.float32)],
                  5, [13, 13])
  k, z = (s[-1].numpy() for s in out.all_states)
  assert np.mean(k != k0) > 0.2
  assert_k_distribution(k, probs)
  assert_mean_and_variance(z, c, 1.)
