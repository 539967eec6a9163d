"""The latent prior p0 (`--model.latent_distribution`): densities, draws, the maps onto
a bounded support, and its use by the game, the latent model and the export.

Moments are checked within four standard errors of the number of draws. The normal
prior must leave every draw of an existing run unchanged, bit for bit.
"""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from conftest import trained_run
from tf_stackelberg.app import latent
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config, ModelConfig
from tf_stackelberg.game.builder import build_gan
from tf_stackelberg.game.stackelberg_gan import _replica
from tf_stackelberg.models import latent_prior as prior_lib
from tf_stackelberg.modes import export as export_mode
from tf_stackelberg.sampling import energy as energy_lib
from tf_stackelberg.sampling import sample_latents
from tf_stackelberg.training import run_settings

NORMAL = prior_lib.get_latent_prior("normal")
UNIFORM = prior_lib.get_latent_prior("uniform")


def game_config(**changes):
  values = {"model.num_generators": 3, "model.generator_hidden": (8,),
            "model.discriminator_hidden": (16, 8), "game.batch_size": 16,
            "data.size": 64, "runtime.jit_compile": False, "seed": 3}
  values.update(changes)
  return Config().replace(**values).validate()


# ------------------------------------------------------------------ the priors
def test_names_lookup_and_flag_choices():
  assert prior_lib.LATENT_PRIORS.names() == ["normal", "uniform"]
  field = {f.name: f for f in dataclasses.fields(ModelConfig)}
  assert tuple(field["latent_distribution"].metadata["choices"]) == ("normal", "uniform")
  assert ModelConfig().latent_distribution == "normal"
  assert prior_lib.get_latent_prior() == NORMAL
  assert prior_lib.get_latent_prior(UNIFORM) is UNIFORM
  assert (NORMAL.name, NORMAL.bounds) == ("normal", None)
  assert (UNIFORM.name, UNIFORM.bounds) == ("uniform", (-1.0, 1.0))
  with pytest.raises(ConfigError, match="--model.latent_distribution='cauchy' is not a "
                     "known latent distribution"):
    prior_lib.get_latent_prior("cauchy")
  with pytest.raises(ConfigError, match="--model.latent_distribution='cauchy' is not "
                     "one of normal, uniform"):
    Config().replace(**{"model.latent_distribution": "cauchy"}).validate()


def test_normal_log_prob_matches_scipy_with_its_constant():
  z = np.random.default_rng(0).normal(size=[7, 3, 2]) * 2.
  expected = stats.norm.logpdf(z).reshape(7, -1).sum(-1)
  np.testing.assert_allclose(NORMAL.log_prob(tf.constant(z)), expected, rtol=1e-12)
  np.testing.assert_allclose(NORMAL.log_prob(tf.zeros([1, 100], tf.float64)),
                             [-50. * math.log(2. * math.pi)], rtol=1e-12)
  assert energy_lib.standard_normal_log_prob is prior_lib.standard_normal_log_prob


def test_uniform_log_prob_is_minus_d_log_2_on_the_closed_box_and_minus_inf_off_it():
  z = tf.constant([[0., 0., 0.], [1., -1., 0.5], [-0.999, 0.2, 1.],
                   [1.0001, 0., 0.], [0., -3., 0.], [np.nan, 0., 0.],
                   [np.inf, 0., 0.]], tf.float64)
  expected = np.array([-3. * math.log(2.)] * 3 + [-np.inf] * 4)
  np.testing.assert_array_equal(UNIFORM.log_prob(z), expected)
  np.testing.assert_array_equal(UNIFORM.contains(z), [True] * 3 + [False] * 4)
  # scipy's density of U[-1, 1] per coordinate, summed over all non-leading axes.
  inside = np.random.default_rng(1).uniform(-1., 1., size=[5, 4, 25])
  np.testing.assert_allclose(
      UNIFORM.log_prob(tf.constant(inside)),
      stats.uniform(-1., 2.).logpdf(inside).reshape(5, -1).sum(-1), rtol=1e-12)
  assert UNIFORM.log_prob(tf.zeros([1, 100])).numpy()[0] == pytest.approx(
      -100. * math.log(2.), rel=1e-6)


def test_uniform_log_prob_has_a_zero_gradient_inside_and_outside():
  z = tf.constant([[0.3, -0.2], [2., 0.], [0., -1.5]])
  with tf.GradientTape() as tape:
    tape.watch(z)
    value = UNIFORM.log_prob(z)
  grad = tape.gradient(value, z)
  assert grad is not None
  np.testing.assert_array_equal(grad, np.zeros([3, 2]))


def test_normal_prior_draws_are_the_stateless_normal_draws_bit_for_bit():
  for seed in (tf.constant([3, 9], tf.int64), tf.constant([-4, 1], tf.int32)):
    for dtype in (tf.float32, tf.float64):
      np.testing.assert_array_equal(
          NORMAL.sample([50, 4], seed, dtype=dtype),
          tf.random.stateless_normal([50, 4], seed, dtype=dtype))


def test_uniform_draws_have_the_moments_of_u_minus_one_one():
  n = 200_000
  z = UNIFORM.sample([n, 2], tf.constant([5, 6], tf.int64)).numpy().astype(np.float64)
  assert z.min() >= -1. and z.max() < 1.
  # mean 0, variance 1/3; the sample variance has variance (mu4 - sigma^4) / n with
  # mu4 = 1/5 for U[-1, 1].
  np.testing.assert_array_less(np.abs(z.mean(0)), 4. * math.sqrt(1. / 3. / n))
  np.testing.assert_array_less(np.abs(z.var(0) - 1. / 3.),
                               4. * math.sqrt((1. / 5. - 1. / 9.) / n))
  # Uniform over the box: each tenth of an axis holds a tenth of the draws.
  counts = np.histogram(z[:, 0], bins=10, range=(-1., 1.))[0]
  assert stats.chisquare(counts).pvalue > 1e-4
  again = UNIFORM.sample([n, 2], tf.constant([5, 6], tf.int64)).numpy()
  np.testing.assert_array_equal(z, again)


def test_clip_and_reflect_map_into_the_box_and_leave_inside_points_alone():
  z = tf.constant([[0.25, -0.5], [1.2, -1.3], [3.5, -5.1], [1., -1.]])
  np.testing.assert_allclose(UNIFORM.clip(z), [[0.25, -0.5], [1., -1.], [1., -1.],
                                               [1., -1.]])
  # A point u beyond a face goes to u inside it; a triangle wave of period 4.
  np.testing.assert_allclose(UNIFORM.reflect(z), [[0.25, -0.5], [0.8, -0.7],
                                                  [-0.5, -0.9], [1., -1.]], atol=1e-6)
  far = tf.random.stateless_normal([10000, 3], [1, 1]) * 10.
  folded = UNIFORM.reflect(far).numpy()
  assert folded.min() >= -1. and folded.max() <= 1.
  assert NORMAL.clip(z) is z and NORMAL.reflect(z) is z


# ------------------------------------------------------------------ the game
def test_normal_prior_gan_draws_exactly_the_former_latents():
  """Training latents and `sample` of a normal-prior run are bit for bit the former
  `stateless_normal` draws keyed by (seed, step, replica)."""
  gan = build_gan(game_config(), (2,))
  assert gan.latent_prior == NORMAL
  gan.d_optimizer.iterations.assign(7)
  former = tf.random.stateless_normal(
      [16, 2], tf.random.experimental.stateless_fold_in(
          tf.constant([3, 7], tf.int64), 0 + _replica()))
  np.testing.assert_array_equal(gan._latents(16), former)
  seed = tf.constant([4, 2], tf.int64)
  z_seed, k_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  k = tf.random.stateless_uniform([300], k_seed, 0, 3, dtype=tf.int32)
  samples, drawn_k = gan.sample(300, seed)
  np.testing.assert_array_equal(drawn_k, k)
  np.testing.assert_array_equal(
      samples, gan.generate(tf.random.stateless_normal([300, 2], z_seed), k))


def test_uniform_prior_gan_draws_its_latents_from_the_box():
  config = game_config(**{"model.latent_distribution": "uniform",
                          "game.shared_z": False})
  gan = build_gan(config, (2,))
  assert gan.latent_prior == UNIFORM
  gan.d_optimizer.iterations.assign(5)
  z = gan._latents(20000).numpy()
  assert z.shape == (3, 20000, 2) and z.min() >= -1. and z.max() < 1.
  n = z.size
  assert abs(z.mean()) < 4. * math.sqrt(1. / 3. / n)
  assert abs(z.var() - 1. / 3.) < 4. * math.sqrt((1. / 5. - 1. / 9.) / n)
  # The same (seed, step, replica) key as the normal prior: one draw per step.
  np.testing.assert_array_equal(gan._latents(20000), z)
  gan.d_optimizer.iterations.assign(6)
  assert not np.array_equal(gan._latents(20000), z)
  seed = tf.constant([4, 2], tf.int64)
  z_seed, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  samples, k = gan.sample(300, seed)
  np.testing.assert_array_equal(
      samples, gan.generate(UNIFORM.sample([300, 2], z_seed), k))
  model = latent.latent_model(gan)
  assert model.prior == UNIFORM and model.energy_fn().prior == UNIFORM


# ------------------------------------------------------------------ a trained run
@pytest.fixture(scope="module")
def uniform_run(tmp_path_factory):
  return trained_run(tmp_path_factory.mktemp("uniform_prior") / "run",
                     **{"trainer.train_steps": 100, "model.num_generators": 2,
                        "model.latent_distribution": "uniform"})


def test_export_of_a_uniform_prior_run_samples_in_the_box(uniform_run, tmp_path):
  config, run = uniform_run
  assert run.gan.latent_prior == UNIFORM
  # Metropolis-Hastings chains: what the bounded prior changes in the export (the
  # prior's draws, bounds and energy term) is the same for every sampler, and the
  # Wang-Landau graph takes several times as long to trace, write, load and run. The
  # bounded Wang-Landau chains have their own tests (test_sampling_bounded_prior.py),
  # and so has the endpoint of Wang-Landau chains (test_mcmc_endpoint.py).
  settings = {"sampling.sampler": "mh", "sampling.num_samples": 200,
              "sampling.steps": 30, "sampling.step_size": 0.05,
              "runtime.jit_compile": False}
  # The run's flags.json names the prior, so later invocations build the same model.
  assert run_settings.read_resolved(config.model_dir).model.latent_distribution == "uniform"
  export_config = config.replace(mode="export", export_dir=str(tmp_path / "model"),
                                 **settings).validate()
  path = export_mode.export(export_config, tf.distribute.get_strategy())
  loaded = tf.saved_model.load(path)

  seed = tf.constant([3, 4], tf.int64)
  served = loaded.signatures["sample"](n=tf.constant(500), seed=seed)
  z_seed, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  z = UNIFORM.sample([500, 2], z_seed)
  np.testing.assert_allclose(served["samples"],
                             run.gan.generate(z, served["generator"]),
                             rtol=1e-6, atol=1e-6)

  mcmc = loaded.signatures["mcmc_sample"](n=tf.constant(200), steps=tf.constant(30),
                                          seed=tf.constant([5, 6], tf.int64))
  chains = mcmc["z"].numpy()
  assert np.isfinite(chains).all() and np.abs(chains).max() <= 1.
  assert np.isfinite(mcmc["energy"].numpy()).all()
  # The energies carry the uniform prior's term, 2 log 2, not the normal one.
  model = latent.run_latent_model(run, with_calibration=True)
  scale, shift = model.calibration
  critic = scale * run.gan.discriminator(mcmc["samples"])[0].numpy().ravel() + shift
  np.testing.assert_allclose(mcmc["energy"] + critic, 2. * math.log(2.),
                             rtol=1e-5, atol=1e-5)
  direct = sample_latents("mh", model, 200, 30, tf.constant([5, 6], tf.int64),
                          latent.sampler_settings(export_config.sampling),
                          jit_compile=False)
  np.testing.assert_array_equal(mcmc["generator"], direct.k)
  np.testing.assert_allclose(mcmc["z"], direct.z, rtol=1e-5, atol=1e-5)
  assert direct.diagnostics["acceptance_rate"] > 0.  # the chains did move
