"""The latent-space view of a trained run, which the latent samplers work on:
`generate_fn(z, k)`, the discriminator logit and its calibration (docs/design.md
section 5)."""

import tensorflow as tf

from tf_stackelberg.sampling.energy import fit_calibration

# Stateless seed salts, distinct from the training and evaluation streams.
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
  _, logit_fn = gan_callables(run.gan)
  return fit_calibration(logit_fn(real).numpy(), logit_fn(fake).numpy())
