"""The latent-space view of a trained run, which the latent samplers work on: the
`LatentModel` (generator, discriminator logit and its calibration, docs/design.md
section 5) and the `SamplerSettings` of `--sampling.*`."""

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.app.held_out import HeldOutSplit
from tf_stackelberg.common import salts
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.sampling.calibration import calibrate
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.settings import SamplerSettings, min_num_steps

CALIBRATION_POINTS = 5000


def gan_callables(gan, network=None):
  """The `(generate_fn, logit_fn)` pair the samplers take; the logit is `network`'s
  (images -> `[B]`, e.g. a class-ratio network of `--mode=prepare`) when given,
  else the discriminator's."""
  def logit_fn(x):
    if network is not None:
      return tf.reshape(tf.cast(network(x), tf.float32), [-1])
    return tf.cast(gan.discriminator(x)[0], tf.float32)  # float32 under any precision
  return gan.generate, logit_fn


def held_out_split(run):
  """The run's `HeldOutSplit` (`--sampling.held_out_fraction`)."""
  return HeldOutSplit(run.data, run.config.sampling.held_out_fraction, run.config.seed)


def calibration_sets(run, num_points=CALIBRATION_POINTS):
  """`(real, fake)`: the held-out real examples (`held_out_split`, at most
  `num_points`) and as many fresh model samples, the same ones for the same seed.
  The calibration, the energy health report and the early stopping of
  `--mode=prepare` read these."""
  real = held_out_split(run).real(num_points)
  fake, _ = run.gan.sample(int(real.shape[0]), tf.constant(
      [run.config.seed, salts.CALIBRATION + 1], tf.int64))
  return real, fake


def calibrate_run(run, num_points=CALIBRATION_POINTS):
  """`(a, b)` of `d_c = a d + b` from the held-out real examples vs fresh model
  samples (`calibration_sets`), with the discriminator in inference mode (BatchNorm's
  moving statistics, the stored spectral-norm vectors), as the samplers use it."""
  real, fake = calibration_sets(run, num_points)
  return calibrate(gan_callables(run.gan)[1], real, fake)


def logistic_discriminator_update(discriminator, optimizer, real, fake):
  """One update of `discriminator` alone with the logistic loss
  `E softplus(-d(x)) + E softplus(d(G z))` on `real` and `fake`; returns the loss.

  The generator-classifier head plays no part in the logit, so its variables get no
  gradient and are left out of the update.
  """
  variables = discriminator.trainable_variables
  with tf.GradientTape() as tape:
    real_logits = tf.cast(discriminator(real, training=True)[0], tf.float32)
    fake_logits = tf.cast(discriminator(fake, training=True)[0], tf.float32)
    loss = (tf.reduce_mean(tf.nn.softplus(-real_logits))
            + tf.reduce_mean(tf.nn.softplus(fake_logits)))
  gradients = tape.gradient(loss, variables)
  optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables)
                             if g is not None])
  return loss


def finetune_discriminator(run, num_steps, batch_size=256, learning_rate=2e-4):
  """Trains the run's discriminator alone against its frozen sampling generator.

  The latent energy reads the discriminator logit as `log p_data / p_g` of the
  current generator (docs/design.md section 5.3), which holds for a discriminator
  trained to optimality against that generator with the logistic loss. A
  discriminator saved mid-game lags the generator it played against; fine-tuning it
  for some steps on fresh data and fresh samples (Adam(`learning_rate`, 0.5), the
  logistic loss whatever the run's loss family, new optimiser state) brings it
  closer to that. Only the in-memory model changes; checkpoints are left alone.

  Args:
    run: a restored `Run`.
    num_steps: discriminator updates (0: nothing happens).
    batch_size: real and generated examples per update.
    learning_rate: Adam's learning rate.

  Returns:
    The logistic losses of the updates, a NumPy array `[num_steps]`.
  """
  if num_steps <= 0:
    return np.zeros([0], np.float32)
  gan, seed = run.gan, run.config.seed
  discriminator = gan.discriminator
  optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5)

  @tf.function
  def update(real, index):
    fake, _ = gan.sample(batch_size, tf.stack([tf.constant(seed + salts.FINETUNE,
                                                           tf.int64), index]))
    return logistic_discriminator_update(discriminator, optimizer, real, fake)

  batches = run.data.batches(batch_size, seed + salts.FINETUNE, num_steps=num_steps)
  losses = []
  for i, real in enumerate(batches):
    real = real[0] if isinstance(real, (tuple, list)) else real
    losses.append(float(update(real, tf.constant(i, tf.int64))))
  return np.array(losses, np.float32)


def latent_model(gan, calibration=None, network=None):
  """The `LatentModel` of a `StackelbergGAN` (with its latent and generator priors),
  with an optional calibration `(a, b)` and `network` in the discriminator's place
  (`gan_callables`)."""
  generate_fn, logit_fn = gan_callables(gan, network)
  return LatentModel(generate_fn, logit_fn, gan.latent_dim, gan.num_generators,
                     calibration, prior=gan.latent_prior,
                     generator_log_prior=getattr(gan, "generator_log_prior", None))


def run_latent_model(run, with_calibration=True):
  """The `LatentModel` of a restored run (calibrated unless told otherwise)."""
  return latent_model(run.gan, calibrate_run(run) if with_calibration else None)


def sampler_settings(sampling):
  """The `SamplerSettings` of a `SamplingConfig` (`--sampling.*`)."""
  return SamplerSettings(step_size=sampling.step_size, joint=sampling.joint,
                         num_bins=sampling.wl_bins, t0=sampling.wl_t0,
                         energy_range=tuple(sampling.wl_energy_range) or None,
                         resample=sampling.wl_resample,
                         temperature=sampling.temperature,
                         isir_proposals=sampling.isir_proposals)


def check_steps(sampling):
  """Refuses, before any work, a `--sampling.steps` too small for the sampler."""
  needed = min_num_steps(sampling.sampler, sampler_settings(sampling))
  if sampling.steps < needed:
    raise ConfigError(f"--sampling.steps={sampling.steps} is too few for "
                      f"--sampling.sampler={sampling.sampler}: it needs at least "
                      f"{needed}")
