"""The latent-space view of a trained run, which the latent samplers work on: the
`LatentModel` (generator, discriminator logit and its calibration, docs/design.md
section 5) and the `SamplerSettings` of `--sampling.*`."""

import tensorflow as tf

from tf_stackelberg.sampling.calibration import calibrate
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.sampling.settings import SamplerSettings, min_num_steps

# Stateless seed salt of the calibration data, distinct from the other streams.
CALIBRATION_SALT = 11
CALIBRATION_POINTS = 5000


def gan_callables(gan):
  """The `(generate_fn, logit_fn)` pair the samplers take."""
  def logit_fn(x):
    return gan.discriminator(x)[0]
  return gan.generate, logit_fn


def calibrate_run(run, num_points=CALIBRATION_POINTS):
  """`(a, b)` of `d_c = a d + b` from held-out real data vs fresh model samples."""
  seed = run.config.seed
  real = run.data.held_out(num_points, tf.constant([seed, CALIBRATION_SALT], tf.int64))
  fake, _ = run.gan.sample(num_points, tf.constant([seed, CALIBRATION_SALT + 1],
                                                   tf.int64))
  return calibrate(gan_callables(run.gan)[1], real, fake)


def latent_model(gan, calibration=None):
  """The `LatentModel` of a `StackelbergGAN` (with its latent prior), with an optional
  calibration `(a, b)`."""
  generate_fn, logit_fn = gan_callables(gan)
  return LatentModel(generate_fn, logit_fn, gan.latent_dim, gan.num_generators,
                     calibration, prior=gan.latent_prior)


def run_latent_model(run, with_calibration=True):
  """The `LatentModel` of a restored run (calibrated unless told otherwise)."""
  return latent_model(run.gan, calibrate_run(run) if with_calibration else None)


def sampler_settings(sampling):
  """The `SamplerSettings` of a `SamplingConfig` (`--sampling.*`)."""
  return SamplerSettings(step_size=sampling.step_size, joint=sampling.joint,
                         num_bins=sampling.wl_bins, t0=sampling.wl_t0,
                         energy_range=tuple(sampling.wl_energy_range) or None,
                         resample=sampling.wl_resample)


def check_steps(sampling):
  """Refuses, before any work, a `--sampling.steps` too small for the sampler."""
  needed = min_num_steps(sampling.sampler, sampler_settings(sampling))
  if sampling.steps < needed:
    raise ConfigError(f"--sampling.steps={sampling.steps} is too few for "
                      f"--sampling.sampler={sampling.sampler}: it needs at least "
                      f"{needed}")
