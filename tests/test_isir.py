"""i-SIR (`sampling/isir.py`, sampler `'isir'`): its exact transition on a discrete
space, its stationary moments on Gaussian targets, joint `(k, z)` moves, and its cost
in evaluations of `G` and `D`."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.models.latent_prior import LatentPrior
from tf_stackelberg.sampling import evaluations_per_chain
from tf_stackelberg.sampling import sample_latents
from tf_stackelberg.sampling import steps_for_budget
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.isir import ImportanceResampling
from tf_stackelberg.sampling.settings import SamplerSettings


class ThreePointPrior(LatentPrior):
  """A proposal on the points {0, 1, 2} of the line, with probabilities `Q`."""

  name = "three_points"
  bounds = None
  Q = np.array([0.5, 0.3, 0.2])

  def sample(self, shape, seed, dtype=tf.float32):
    flat = tf.random.stateless_categorical(
        tf.math.log([self.Q]), tf.reduce_prod(shape), seed)
    return tf.cast(tf.reshape(flat, shape), dtype)

  def log_prob(self, z):
    index = tf.cast(tf.reshape(z, [tf.shape(z)[0], -1])[:, 0], tf.int32)
    return tf.gather(tf.math.log(tf.constant(self.Q, tf.float32)), index)


def exact_transition(target, proposal, num_proposals):
  """The i-SIR transition matrix `P[x, y]` on a finite space, by enumeration, and
  the chance from each `x` of picking a proposal rather than the current state."""
  size = len(target)
  weights = target / proposal
  matrix = np.zeros([size, size])
  leave = np.zeros([size])
  for x in range(size):
    for drawn in itertools.product(range(size), repeat=num_proposals):
      chance = np.prod(proposal[list(drawn)])
      candidates = (x,) + drawn
      total = weights[list(candidates)].sum()
      leave[x] += chance * (1. - weights[x] / total)
      for y in candidates:
        matrix[x, y] += chance * weights[y] / total
  return matrix, leave


@pytest.mark.parametrize("num_proposals", [1, 2])
def test_one_step_is_the_exact_isir_transition_which_leaves_the_target_invariant(
    num_proposals):
  target = np.array([0.2, 0.3, 0.5])
  prior = ThreePointPrior()
  matrix, leave = exact_transition(target, prior.Q, num_proposals)
  np.testing.assert_allclose(target @ matrix, target, atol=1e-12)  # invariance
  log_target = tf.math.log(tf.constant(target, tf.float32))
  kernel = ImportanceResampling(
      lambda z: tf.gather(log_target, tf.cast(z[:, 0], tf.int32)), num_proposals,
      prior=prior)
  assert kernel.is_calibrated and kernel.parameters["num_proposals"] == num_proposals
  chains = 20000
  for x in range(3):
    state = tf.fill([chains, 1], float(x))
    new_state, results = kernel.one_step(state, kernel.bootstrap_results(state),
                                         seed=[x, num_proposals])
    counts = np.bincount(new_state.numpy()[:, 0].astype(int), minlength=3)
    expected = matrix[x]
    # Multinomial counts: each within 4.5 standard errors of the exact transition.
    error = np.sqrt(chains * expected * (1 - expected))
    assert np.all(np.abs(counts - chains * expected) < 4.5 * error), (x, counts)
    moved = results.is_accepted.numpy()
    assert np.all(new_state.numpy()[moved == 0, 0] == x)
    # A proposal equal to x may be picked too: the chance of picking a proposal is
    # `leave`, reported per chain (`leave_prob`, mean of a [0, 1] variable: standard
    # error at most 0.5 / sqrt(chains)) and realised by `is_accepted`.
    bound = 4.5 * 0.5 / np.sqrt(chains)
    assert abs(results.leave_prob.numpy().mean() - leave[x]) < bound
    assert abs(moved.mean() - leave[x]) < bound


def chain_moments(trace):
  """Mean and variance of `trace` `[steps, chains]` with their ESS-based errors."""
  ess_mean = tf.reduce_sum(tfp.mcmc.effective_sample_size(
      trace, filter_beyond_positive_pairs=True)).numpy()
  mean = trace.numpy().mean()
  squares = (trace - mean)**2
  ess_var = tf.reduce_sum(tfp.mcmc.effective_sample_size(
      squares, filter_beyond_positive_pairs=True)).numpy()
  var = squares.numpy().mean()
  return (mean, np.sqrt(var / ess_mean)), (var, np.std(squares.numpy()) /
                                           np.sqrt(ess_var))


@pytest.mark.parametrize("num_proposals", [1, 8])
def test_chain_moments_match_a_gaussian_target(num_proposals):
  # p0 = N(0, 1) times exp(d), d(z) = a z - c z^2 / 2: the target N(a / (1 + c),
  # 1 / (1 + c)) = N(0.8, 0.4) for a = 2, c = 1.5.
  a, c = 2., 1.5
  kernel = ImportanceResampling(
      lambda z: tf.reduce_sum(-0.5 * z**2 + a * z - 0.5 * c * z**2, axis=-1),
      num_proposals)

  @tf.function(jit_compile=True)
  def run():
    return tfp.mcmc.sample_chain(
        num_results=300, current_state=tf.zeros([400, 1]), kernel=kernel,
        num_burnin_steps=50, trace_fn=lambda _, r: r.is_accepted, seed=[4, 2])

  samples, accepted = run()
  (mean, mean_error), (var, var_error) = chain_moments(samples[..., 0])
  assert abs(mean - 0.8) < 4 * mean_error, (mean, mean_error)
  assert abs(var - 0.4) < 4 * var_error, (var, var_error)
  # More proposals leave the current state more often.
  rate = accepted.numpy().mean()
  assert (0.3 < rate < 0.6) if num_proposals == 1 else rate > 0.8


def test_joint_moves_give_the_generator_masses_and_conditionals():
  # pi(k, z) ~ N(z; 0, 1) exp(a_k z): pi(k) ~ exp(a_k^2 / 2), z | k ~ N(a_k, 1).
  shift = tf.constant([0., 0.5, 1.2])
  kernel = ImportanceResampling(
      lambda k, z: -0.5 * z[:, 0]**2 + tf.gather(shift, k) * z[:, 0], 4,
      num_generators=3)

  @tf.function(jit_compile=True)
  def run():
    return tfp.mcmc.sample_chain(
        num_results=300, current_state=[tf.zeros([300], tf.int32),
                                        tf.zeros([300, 1])],
        kernel=kernel, num_burnin_steps=30, trace_fn=None, seed=[7, 1])

  k, z = run()
  mass = np.exp(shift.numpy()**2 / 2)
  mass /= mass.sum()
  for index in range(3):
    indicator = tf.cast(k == index, tf.float32)
    (share, error), _ = chain_moments(indicator)
    assert abs(share - mass[index]) < 4 * error, (index, share, mass[index])
  z_of_last = z.numpy()[..., 0][k.numpy() == 2]
  # z | k = 2 ~ N(1.2, 1); the draws of the states with k = 2 are correlated, so
  # the error allows for an ESS a tenth of their number.
  assert abs(z_of_last.mean() - 1.2) < 4 * np.sqrt(10. / z_of_last.size)


def counted_model(num_generators, counter):
  """`G_k(z) = z + k`, `d(x) = x . (1, -0.5)`, counting the points `D` sees."""
  def generate_fn(z, k):
    return z + tf.cast(k, z.dtype)[:, tf.newaxis]

  def logit_fn(x):
    counter.assign_add(tf.shape(x, out_type=tf.int64)[0])
    return tf.linalg.matvec(x, tf.constant([1., -0.5]))

  return LatentModel(generate_fn, logit_fn, latent_dim=2,
                     num_generators=num_generators)


@pytest.mark.parametrize("num_generators,joint", [(1, True), (3, True), (3, False)])
def test_cost_is_n_evaluations_a_step_as_the_budget_predicts(num_generators, joint):
  settings = SamplerSettings(isir_proposals=5, joint=joint)
  counter = tf.Variable(0, dtype=tf.int64)
  result = sample_latents("isir", counted_model(num_generators, counter), 6, 7,
                          [3, 4], settings, jit_compile=False)
  total, gradient = evaluations_per_chain("isir", 7, settings, num_generators)
  assert (total, gradient) == (1 + 5 * 7, 0)
  assert result.diagnostics["num_energy_evaluations"] == 6 * total
  assert result.diagnostics["num_gradient_evaluations"] == 0
  assert int(counter.numpy()) == 6 * total
  if not joint:  # each chain keeps its generator
    initial = sample_latents("none", counted_model(num_generators, counter), 6, 0,
                             [3, 4], settings)
    np.testing.assert_array_equal(result.k, initial.k)


def test_steps_for_budget_buys_one_step_per_n_evaluations():
  assert steps_for_budget("isir", 200) == 24  # 1 + 8 * 24 = 193 <= 200 < 201
  assert steps_for_budget("isir", 200, SamplerSettings(isir_proposals=1)) == 199
  assert steps_for_budget("isir", 9, num_generators=10) == 1
  with pytest.raises(ValueError, match="below"):
    steps_for_budget("isir", 8)


def test_sampler_reaches_the_target_of_a_linear_discriminator():
  # G = identity, d(x) = x . mu on N(0, I): the target is N(mu, I), reached from
  # the prior in a few steps of 16 proposals; final states of independent chains.
  mu = np.array([1., -0.5], np.float32)
  model = LatentModel(lambda z, k: z, lambda x: tf.linalg.matvec(x, mu), 2)
  result = sample_latents("isir", model, 4000, 40, [5, 6],
                          SamplerSettings(isir_proposals=16))
  error = 1. / np.sqrt(4000)
  np.testing.assert_array_less(np.abs(result.z.mean(0) - mu), 4 * error)
  np.testing.assert_array_less(np.abs(result.z.var(0) - 1.), 4 * np.sqrt(2.) * error)
  assert not result.diagnostics["problems"]


def test_bad_settings_are_refused():
  with pytest.raises(ValueError, match="isir_proposals"):
    SamplerSettings(isir_proposals=0)
  with pytest.raises(ValueError, match="num_proposals"):
    ImportanceResampling(lambda z: z, 0)
