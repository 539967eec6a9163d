"""The positive control of docs/design.md section 14.6, on a 2-D mixture with a known
answer: K generators where generator k emits exactly mode k of the 8-mode ring, mixed
with the skewed prior p(k) proportional to 2^k. The data weighs the modes equally, so a
discriminator trained against this mixture reads log(1 / (K p(k))) at mode k, and the
corrected distribution is the uniform mixture. The joint (k, z) Wang-Landau chain must
bring the mode histogram's KL to uniform down by at least half (it should reach about
zero); the generator alone keeps the skew."""

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.app import latent
from tf_stackelberg.config.sections import DataConfig, ModelConfig
from tf_stackelberg.data import mixtures
from tf_stackelberg.game.stackelberg_gan import StackelbergGAN
from tf_stackelberg.models import generator_prior
from tf_stackelberg.models.registry import DISCRIMINATORS
from tf_stackelberg.sampling.calibration import calibrate
from tf_stackelberg.sampling.sample import sample_latents
from tf_stackelberg.sampling.settings import SamplerSettings

SPEC = mixtures.ring()  # 8 modes on the unit circle, std 0.01
K = len(SPEC.centers)
CHAINS = 2000


class ModeGenerators(keras.Model):
  """K generators, G_k(z) = centre_k + std * z: generator k makes mode k exactly."""

  def __init__(self):
    super().__init__()
    self.num_generators = K
    self.centers = tf.constant(SPEC.centers)

  def call(self, z, training=False):
    del training
    noise = SPEC.std * z
    if len(z.shape) == 2:
      noise = tf.broadcast_to(noise, [K] + list(noise.shape))
    return self.centers[:, None, :] + noise


def _skewed_gan():
  discriminator = DISCRIMINATORS.get("mlp")(
      ModelConfig(discriminator_hidden=(64, 64)), (2,), 0)
  gan = StackelbergGAN(ModeGenerators(), discriminator, latent_dim=2, seed=0,
                       generator_prior="geometric2")
  discriminator(tf.zeros([1, 2]))
  return gan


def _prepare_discriminator(gan, steps=600, batch=512):
  """Trains D alone against the frozen skewed mixture (logistic loss)."""
  optimizer = keras.optimizers.Adam(2e-3, beta_1=0.5)

  @tf.function
  def update(i):
    real, _ = mixtures.draw_points(SPEC, batch, tf.stack([tf.constant(1, tf.int64), i]))
    fake, _ = gan.sample(batch, tf.stack([tf.constant(2, tf.int64), i]))
    return latent.logistic_discriminator_update(gan.discriminator, optimizer, real,
                                                fake)
  for i in range(steps):
    update(tf.constant(i, tf.int64))


def _mode_histogram(x):
  d = ((np.asarray(x)[:, None, :] - SPEC.centers[None]) ** 2).sum(-1)
  return np.bincount(d.argmin(1), minlength=K)


def _kl_to_uniform_and_se(counts, effective_n):
  """KL(hist || uniform) and its delta-method standard error for a multinomial
  sample of `effective_n` draws: Var KL = (E[g^2] - E[g]^2) / n with
  g = log(K p) + 1 the derivative of sum p log(K p) in each p."""
  p = counts / counts.sum()
  safe = np.where(p > 0, p, 1.0)
  kl = float(np.sum(np.where(p > 0, p * np.log(K * safe), 0.0)))
  g = np.where(p > 0, np.log(K * safe), 0.0)
  var = (np.sum(p * g ** 2) - np.sum(p * g) ** 2) / effective_n
  # The KL of a uniform sample is biased up by about (K - 1) / (2 n).
  return kl, float(np.sqrt(max(var, 0.0)) + (K - 1) / (2 * effective_n))


def test_generator_prior_draws_and_uniform_default_unchanged():
  log_w = generator_prior.generator_log_weights("geometric2", K)
  p = np.exp(log_w)
  np.testing.assert_allclose(p, 2.0 ** np.arange(K) / (2 ** K - 1), rtol=1e-12)
  n = 40000
  k = generator_prior.sample_generator_index(n, tf.constant([3, 4]), K, log_w)
  counts = np.bincount(k.numpy(), minlength=K)
  assert np.all(np.abs(counts - n * p) < 4 * np.sqrt(n * p * (1 - p))), counts
  # The uniform prior draws exactly what tf.random.stateless_uniform draws.
  assert generator_prior.generator_log_weights("uniform", K) is None
  seed = tf.constant([5, 6])
  np.testing.assert_array_equal(
      generator_prior.sample_generator_index(100, seed, K),
      tf.random.stateless_uniform([100], seed, 0, K, dtype=tf.int32))


def test_joint_wang_landau_undoes_the_skewed_generator_prior():
  tf.keras.utils.set_random_seed(0)
  gan = _skewed_gan()
  _prepare_discriminator(gan)
  real, _ = mixtures.draw_points(SPEC, 4000, tf.constant([7, 8], tf.int64))
  fake, _ = gan.sample(4000, tf.constant([9, 10], tf.int64))
  model = latent.latent_model(gan, calibrate(latent.gan_callables(gan)[1], real, fake))
  assert model.generator_log_prior == generator_prior.generator_log_weights(
      "geometric2", K)
  seed = tf.constant([11, 12])
  settings = SamplerSettings(joint=True)
  before = sample_latents("none", model, CHAINS, 1, seed, settings)
  after = sample_latents("wl", model, CHAINS, 400, seed, settings)
  counts_before = _mode_histogram(before.x)
  counts_after = _mode_histogram(after.x)
  # The generator alone draws k ~ p(k): its histogram is the skewed prior's.
  p = 2.0 ** np.arange(K) / (2 ** K - 1)
  assert np.all(np.abs(counts_before - CHAINS * p)
                < 4 * np.sqrt(CHAINS * p * (1 - p))), counts_before
  kl_before, se_before = _kl_to_uniform_and_se(counts_before, CHAINS)
  # Resampled draws repeat chains: the importance sample's Kish ESS counts them.
  ess = min(CHAINS, float(after.diagnostics["ess"]))
  kl_after, se_after = _kl_to_uniform_and_se(counts_after, ess)
  print(f"mode KL to uniform {kl_before:.4f} +- {se_before:.4f} -> {kl_after:.4f} "
        f"+- {se_after:.4f} (ESS {ess:.0f}), {counts_before} -> {counts_after}")
  assert kl_before > 0.5, kl_before  # KL(p || uniform) = 0.70 for K = 8
  # At least halved, with three standard errors to spare on either side.
  assert kl_after + 3 * se_after < (kl_before - 3 * se_before) / 2, (
      kl_before, kl_after, se_after, counts_after)
  # Chains of fixed k cannot move mass between generators: the Wang-Landau weights,
  # normalised per generator, give generator k the mass p(k), and the resampled
  # draws keep the skew (multinomial resampling of CHAINS draws).
  fixed = sample_latents("wl", model, CHAINS, 100, seed, SamplerSettings(joint=False))
  counts_fixed = np.bincount(np.asarray(fixed.k), minlength=K)
  assert np.all(np.abs(counts_fixed - CHAINS * p)
                < 4 * np.sqrt(CHAINS * p * (1 - p)) + 1), counts_fixed
