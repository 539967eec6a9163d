"""`--sampling.temperature`: the discriminator term of the energy divided by `T`
(`sampling/energy.py`), for every sampler through `SamplerSettings.temperature`."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.app import latent
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config
from tf_stackelberg.models.latent_prior import standard_normal_log_prob
from tf_stackelberg.sampling import sample_latents
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.energy import make_energy_fn
from tf_stackelberg.sampling.settings import SamplerSettings

CALIBRATION = (1.7, -0.3)


def generate_fn(z, k):
  return tf.tanh(z) + tf.cast(k, z.dtype)[:, tf.newaxis]


def logit_fn(x):
  return tf.reduce_sum(tf.sin(3. * x), axis=-1)


def test_temperature_one_leaves_the_energy_unchanged_bit_for_bit():
  z = tf.random.stateless_normal([64, 3], [1, 2])
  k = tf.random.stateless_uniform([64], [3, 4], maxval=2, dtype=tf.int32)
  scale, shift = CALIBRATION
  expected = (-standard_normal_log_prob(z)
              - (scale * logit_fn(generate_fn(z, k)) + shift)).numpy()
  plain = make_energy_fn(generate_fn, logit_fn, CALIBRATION)(z, k).numpy()
  one = make_energy_fn(generate_fn, logit_fn, CALIBRATION, temperature=1.)(z, k)
  np.testing.assert_array_equal(plain, expected)
  np.testing.assert_array_equal(one.numpy(), expected)
  model = LatentModel(generate_fn, logit_fn, 3, 2, CALIBRATION)
  assert model.tempered(1.) is model and model.temperature == 1.
  np.testing.assert_array_equal(model.energy_fn()(z, k).numpy(), expected)


def test_temperature_two_halves_the_discriminator_term():
  z = tf.random.stateless_normal([64, 3], [5, 6])
  k = tf.zeros([64], tf.int32)
  log_p0 = standard_normal_log_prob(z).numpy()
  model = LatentModel(generate_fn, logit_fn, 3, 2, CALIBRATION)
  critic = -model.energy_fn()(z, k).numpy() - log_p0
  for tempered in (model.tempered(2.), LatentModel(generate_fn, logit_fn, 3, 2,
                                                   CALIBRATION, temperature=2.)):
    assert tempered.temperature == 2.
    half = -tempered.energy_fn()(z, k).numpy() - log_p0
    np.testing.assert_allclose(half, critic / 2., rtol=1e-5, atol=1e-5)
  # The settings' temperature multiplies the model's.
  assert model.tempered(2.).tempered(0.25).temperature == 0.5


@pytest.mark.parametrize("sampler,temperature", [("rep", 0.5), ("rep", 2.),
                                                 ("isir", 2.)])
def test_stationary_moments_follow_the_tempered_target(sampler, temperature):
  # G = identity, d(x) = 2 x on N(0, 1): the tempered target p0 exp(2 z / T) is
  # N(2 / T, 1). Final states of 4000 independent chains started at the prior.
  model = LatentModel(lambda z, k: z, lambda x: 2. * x[:, 0], 1)
  settings = SamplerSettings(step_size=0.5, temperature=temperature,
                             isir_proposals=16)
  # Uncompiled: the tempered energy is the same with XLA, whose compilation of each
  # chain would cost more than running it.
  result = sample_latents(sampler, model, 4000, 60, [3, 1], settings,
                          jit_compile=False)
  mean, var = result.z[:, 0].mean(), result.z[:, 0].var()
  error = 1. / math.sqrt(4000)
  assert abs(mean - 2. / temperature) < 4 * error, mean
  assert abs(var - 1.) < 4 * math.sqrt(2.) * error, var
  # The reported energies are the tempered ones.
  np.testing.assert_allclose(
      result.energy, 0.5 * result.z[:, 0]**2 + 0.5 * math.log(2 * math.pi)
      - 2. * result.z[:, 0] / temperature, rtol=1e-5, atol=1e-5)


def test_default_settings_give_the_samples_of_temperature_one():
  model = LatentModel(generate_fn, logit_fn, 3, 2, CALIBRATION)
  default = sample_latents("rep", model, 32, 5, [1, 2], jit_compile=False)
  explicit = sample_latents("rep", model, 32, 5, [1, 2],
                            SamplerSettings(temperature=1.), jit_compile=False)
  np.testing.assert_array_equal(default.z, explicit.z)
  np.testing.assert_array_equal(default.energy, explicit.energy)


@pytest.mark.parametrize("value", [0., -1., float("inf"), float("nan")])
def test_a_temperature_that_is_not_positive_and_finite_is_refused(value):
  with pytest.raises(ConfigError, match=r"^--sampling\.temperature"):
    Config().replace(**{"sampling.temperature": value}).validate()
  with pytest.raises(ValueError, match="temperature"):
    SamplerSettings(temperature=value)
  with pytest.raises(ValueError, match="temperature"):
    LatentModel(generate_fn, logit_fn, 3, temperature=value)


def test_the_flag_reaches_the_sampler_settings():
  sampling = Config().replace(**{"sampling.temperature": 0.25,
                                 "sampling.isir_proposals": 3}).validate().sampling
  settings = latent.sampler_settings(sampling)
  assert settings.temperature == 0.25 and settings.isir_proposals == 3
