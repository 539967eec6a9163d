"""The latent samplers on the uniform prior U[-1, 1]^D.

The toy latent model has two generators on a 2-D latent, `G_0(z) = z` and
`G_1(z) = z / 2`, and a logit `2 x_0 + 1.5 x_1 + x_0 x_1` that favours the corner
`(1, 1)`: the target `pi(k, z) ~ exp(logit(G_k(z)))` on the box piles its mass against
two faces, where many Langevin proposals leave the box. Its exact moments come from a
midpoint rule on a 1000 x 1000 grid (error of order 1e-6).

Tolerances are four standard errors: of an average of independent values for the final
states of independent chains (`rep`, `mh`, started from the prior and run long past
their mixing time), and with the Kish effective sample size of the importance weights,
plus the resampling's own share, for `wl`.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.models.latent_prior import get_latent_prior
from tf_stackelberg.sampling import LatentModel, SamplerSettings, sample_latents
from tf_stackelberg.sampling import energy as energy_lib
from tf_stackelberg.sampling.samplers import ddls, rep
from tf_stackelberg.sampling.wang_landau import WangLandau

UNIFORM = get_latent_prior("uniform")
SCALES = (1.0, 0.5)
NUM_CHAINS = 4000


def generate_fn(z, k):
  return z * tf.gather(tf.constant(SCALES, z.dtype), tf.cast(k, tf.int32))[:, None]


def logit_fn(x):
  return 2.0 * x[:, 0] + 1.5 * x[:, 1] + x[:, 0] * x[:, 1]


def toy_model():
  return LatentModel(generate_fn, logit_fn, latent_dim=2, num_generators=2,
                     prior="uniform")


def exact_moments(points=1000):
  """`P(k = 0)`, and the mean and variance of `z` per coordinate, under the joint
  target; and the mean and variance of `z` with `k` uniform and `z | k` the target
  (fixed `k` per chain)."""
  axis = -1. + (np.arange(points) + 0.5) * 2. / points
  z0, z1 = np.meshgrid(axis, axis, indexing="ij")
  weights = np.stack([np.exp(2. * s * z0 + 1.5 * s * z1 + s * s * z0 * z1)
                      for s in SCALES])

  def moments(w):
    w = w / w.sum()
    mean = np.array([(w * z0).sum(), (w * z1).sum()])
    second = np.array([(w * z0**2).sum(), (w * z1**2).sum()])
    return mean, second - mean**2

  joint = moments(weights)
  fixed = moments(weights / weights.sum(axis=(1, 2), keepdims=True))
  return weights[0].sum() / weights.sum(), joint, fixed


def test_exact_moments_of_the_toy():
  """The grid against quadrature: for a scale `s` the integral over `z_1` of
  `exp(2 s z_0 + c z_1)`, `c = 1.5 s + s^2 z_0`, is closed-form, the one over `z_0`
  is done by `scipy.integrate.quad`."""
  from scipy import integrate  # pylint: disable=g-import-not-at-top

  def inner(z0, s, power):
    c = 1.5 * s + s * s * z0
    if power == 0:
      value = 2. * math.sinh(c) / c
    else:
      value = 2. * math.cosh(c) / c - 2. * math.sinh(c) / c**2
    return math.exp(2. * s * z0) * value

  def integral(s, power0, power1):
    return integrate.quad(lambda z0: z0**power0 * inner(z0, s, power1), -1., 1.,
                          epsabs=1e-13, epsrel=1e-12)[0]

  mass = [integral(s, 0, 0) for s in SCALES]
  mean0 = sum(integral(s, 1, 0) for s in SCALES) / sum(mass)
  mean1 = sum(integral(s, 0, 1) for s in SCALES) / sum(mass)
  p_k0, (mean, _), _ = exact_moments()
  assert abs(p_k0 - mass[0] / sum(mass)) < 1e-5
  np.testing.assert_allclose(mean, [mean0, mean1], atol=1e-5)
  assert 0.7 < p_k0 < 0.75 and np.all(mean > 0.4)  # mass toward the corner (1, 1)


def test_energy_is_infinite_outside_the_box_with_finite_gradients():
  seen = []

  def recording_generate(z, k):
    seen.append(z)
    return generate_fn(z, k)

  energy = energy_lib.make_energy_fn(recording_generate, logit_fn, (0.5, 0.2),
                                     prior="uniform")
  z = tf.constant([[0.3, -0.4], [1., 1.], [1.5, 0.2], [-0.2, -3.]])
  k = tf.constant([0, 1, 0, 1])
  with tf.GradientTape() as tape:
    tape.watch(z)
    values = energy(z, k)
  grads = tape.gradient(values, z).numpy()
  x = generate_fn(tf.clip_by_value(z, -1., 1.), k)
  inside = (2. * math.log(2.) - 0.5 * logit_fn(x) - 0.2).numpy()
  np.testing.assert_allclose(values[:2], inside[:2], rtol=1e-6)
  assert np.all(np.isposinf(values[2:]))
  # The generator only ever sees points of the box.
  np.testing.assert_array_equal(seen[-1], tf.clip_by_value(z, -1., 1.))
  assert np.isfinite(grads).all()
  # Inside: -0.5 grad of the logit (2 + x_1, 1.5 + x_0) times the generator's scale;
  # outside, the clipped coordinate has no gradient.
  np.testing.assert_allclose(grads[0], [-0.5 * (2. - 0.4), -0.5 * (1.5 + 0.3)],
                             rtol=1e-6)
  assert grads[2, 0] == 0. and grads[3, 1] == 0.


def test_mala_and_wang_landau_reject_proposals_outside_the_box():
  """From the corner with a long step most proposals leave the box: their log
  acceptance ratio is -inf (not NaN), they are rejected, and nothing becomes NaN."""
  model = toy_model()
  energy = model.energy_fn()

  def energy_fn(z):
    return energy(z, tf.zeros([tf.shape(z)[0]], tf.int32))

  z = tf.fill([2000, 2], 0.98)
  kernel = rep.make_rep_kernel(energy_fn, step_size=0.5)
  state, results = kernel.one_step(z, kernel.bootstrap_results(z), seed=[1, 2])
  proposed = results.proposed_state.numpy()
  outside = np.abs(proposed).max(1) > 1.
  assert 0.5 < outside.mean() < 1.  # both kinds of proposals are there
  assert np.all(np.isneginf(results.proposed_results.target_log_prob.numpy()[outside]))
  assert np.all(np.isneginf(results.log_accept_ratio.numpy()[outside]))
  assert not np.any(results.is_accepted.numpy()[outside])
  assert np.any(results.is_accepted.numpy()[~outside])
  for grad in results.proposed_results.grads_target_log_prob:
    assert np.isfinite(grad.numpy()).all()
  np.testing.assert_array_equal(state.numpy()[outside], z.numpy()[outside])
  assert np.abs(state.numpy()).max() <= 1.
  assert np.isfinite(results.accepted_results.target_log_prob.numpy()).all()

  wl = WangLandau(energy_fn, -5., 5., num_bins=10, step_size=0.5,
                  num_adaptation_steps=10)
  wl_results = wl.bootstrap_results(z)
  wl_state = z
  for step in range(10):
    wl_state, wl_results = wl.one_step(wl_state, wl_results, seed=[3, step])
  assert np.abs(wl_state.numpy()).max() <= 1.
  for name in ("energy", "theta", "bias", "log_step_size", "accept_prob"):
    assert np.isfinite(getattr(wl_results, name).numpy()).all(), name
  np.testing.assert_allclose(wl_results.energy, energy_fn(wl_state), rtol=1e-6)


@pytest.mark.parametrize("sampler,joint,jit_compile", [
    ("rep", True, False), ("rep", False, False), ("wl", True, True),
    ("mh", True, False), ("mh", False, False)])
def test_samplers_on_the_uniform_prior_match_the_exact_target(sampler, joint,
                                                              jit_compile):
  p_k0, joint_moments, fixed_moments = exact_moments()
  mean, variance = joint_moments if joint else fixed_moments
  steps = 300 if sampler != "mh" else 200
  result = sample_latents(sampler, toy_model(), NUM_CHAINS, steps,
                          tf.constant([1, 7]),
                          SamplerSettings(step_size=0.05, joint=joint),
                          jit_compile=jit_compile)
  z, k = result.z, result.k
  assert np.isfinite(z).all() and np.isfinite(result.energy).all()
  assert np.abs(z).max() <= 1.
  assert result.diagnostics["problems"] == []
  n = NUM_CHAINS
  effective = n
  if sampler == "wl":
    # Kish size of the weights, and the resampling's own variance of 1/n.
    effective = 1. / (1. / result.diagnostics["ess"] + 1. / n)
    assert np.isfinite(result.diagnostics["energy_range"]).all()
  np.testing.assert_array_less(np.abs(z.mean(0) - mean),
                               4. * np.sqrt(variance / effective))
  if joint:
    share = np.mean(k == 0)
    assert abs(share - p_k0) < 4. * math.sqrt(p_k0 * (1. - p_k0) / effective)
    assert result.diagnostics["generator_acceptance_rate"] > 0.
  else:
    assert abs(np.mean(k == 0) - 0.5) < 4. * math.sqrt(0.25 / n)


def test_chains_start_from_the_prior():
  result = sample_latents("none", toy_model(), 20000, 0, tf.constant([2, 3]),
                          jit_compile=False)
  z = result.z.astype(np.float64)
  assert z.min() >= -1. and z.max() < 1. and np.isfinite(result.energy).all()
  np.testing.assert_array_less(np.abs(z.mean(0)), 4. * math.sqrt(1. / 3. / len(z)))
  np.testing.assert_array_less(np.abs(z.var(0) - 1. / 3.),
                               4. * math.sqrt((1. / 5. - 1. / 9.) / len(z)))


@pytest.mark.filterwarnings("ignore:supplied `TransitionKernel` is not calibrated")
def test_ddls_reflects_into_the_box_and_keeps_the_uniform_law_of_a_flat_energy():
  """With a flat energy the reflected steps leave U[-1, 1]^D exactly invariant (a
  clipped chain would pile up on the faces): chains started from it end in it."""
  def flat_energy(z):
    return 0. * tf.reduce_sum(z, axis=-1)

  kernel = ddls.make_ddls_kernel(flat_energy, step_size=0.5, prior="uniform")
  assert isinstance(kernel, ddls.ReflectedLangevin) and not kernel.is_calibrated
  assert isinstance(ddls.make_ddls_kernel(flat_energy, 0.5),
                    tfp.mcmc.UncalibratedLangevin)
  init = UNIFORM.sample([NUM_CHAINS, 3], tf.constant([4, 4]))
  states = tfp.mcmc.sample_chain(20, init, kernel=kernel, trace_fn=None,
                                 seed=[5, 5])
  final = states[-1].numpy().astype(np.float64)
  assert np.abs(states.numpy()).max() <= 1.
  assert np.mean(np.abs(final - init.numpy())) > 0.3  # the chains moved
  assert np.mean(np.abs(final) == 1.) == 0.
  n = final.shape[0]
  np.testing.assert_array_less(np.abs(final.mean(0)), 4. * math.sqrt(1. / 3. / n))
  np.testing.assert_array_less(np.abs(final.var(0) - 1. / 3.),
                               4. * math.sqrt((1. / 5. - 1. / 9.) / n))


def test_ddls_reflected_step_is_the_langevin_step_folded_into_the_box():
  def energy_fn(z):
    return -tf.reduce_sum(3. * z, axis=-1)  # grad log pi = 3 per coordinate

  kernel = ddls.make_ddls_kernel(energy_fn, step_size=0.2, prior="uniform")
  z = UNIFORM.sample([500, 2], tf.constant([6, 6]))
  state, results = kernel.one_step(z, kernel.bootstrap_results(z), seed=[7, 8])
  noise = tf.random.stateless_normal([500, 2], tfp.random.sanitize_seed([7, 8]))
  free = z + 0.5 * 0.2 * 3. + math.sqrt(0.2) * noise
  np.testing.assert_allclose(state, UNIFORM.reflect(free), rtol=1e-6, atol=1e-6)
  assert np.any(np.abs(free.numpy()) > 1.)  # some steps were reflected
  np.testing.assert_allclose(results.target_log_prob, -energy_fn(state), rtol=1e-6)
  np.testing.assert_allclose(results.grads_target_log_prob, np.full([500, 2], 3.))


@pytest.mark.parametrize("joint", [True, False])
def test_ddls_sampler_on_the_uniform_prior_stays_in_the_box(joint):
  result = sample_latents("ddls", toy_model(), 1000, 200, tf.constant([3, 1]),
                          SamplerSettings(step_size=0.05, joint=joint),
                          jit_compile=False)
  assert np.isfinite(result.z).all() and np.isfinite(result.energy).all()
  assert np.abs(result.z).max() <= 1.
  assert result.diagnostics["problems"] == []
  # The chains went from the prior (mean 0) to the target (mean about 0.5), which
  # unadjusted Langevin reaches up to an O(step) bias: 0.02 to 0.05 at this step,
  # measured on this seed, with a standard error of 0.014.
  _, joint_moments, fixed_moments = exact_moments()
  mean = (joint_moments if joint else fixed_moments)[0]
  np.testing.assert_array_less(np.abs(result.z.mean(0) - mean), 0.1)
