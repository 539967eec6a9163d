"""`--mode=sample`: run a latent sampler on a trained run and save what it drew.

Writes into `--sample_dir` (default `MODEL_DIR/samples_SAMPLER`):

```none
samples.npz     z, k (generator index), x = G_k(z), energy of every sample
metrics.json    mixture metrics of the samples and the sampler's diagnostics
samples.png     scatter plot of the samples over the real data
logs/           TensorBoard: acceptance and mean energy per step, the final energy
                histogram, and per-bin curves (x axis = bin index) of the visits and of
                the Wang-Landau bias theta
```

An existing `samples.npz` is never replaced: choose another `--sample_dir`.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg import config as config_lib
from tf_stackelberg import metrics as metrics_lib
from tf_stackelberg import visualization
from tf_stackelberg.data import mixtures
from tf_stackelberg.sampling.energy import fit_calibration
from tf_stackelberg.sampling.runner import sample_latents

# Stateless seed salts, distinct from the training and evaluation streams.
_CALIBRATION_SALT, _SAMPLING_SALT = 11, 13
_CALIBRATION_POINTS = 5000


def default_sample_dir(config):
  return config.sample_dir or os.path.join(config.model_dir, f"samples_{config.sampler}")


def gan_callables(gan):
  """The `(generate_fn, logit_fn)` pair the samplers take."""
  def logit_fn(x):
    return gan.discriminator(x)[0]
  return gan.generate, logit_fn


def calibrate(gan, spec, seed, num_points=_CALIBRATION_POINTS):
  """`(a, b)` of `d_c = a d + b` from held-out real points vs fresh model samples."""
  real, _ = mixtures.draw_points(spec, num_points,
                                 tf.constant([seed, _CALIBRATION_SALT], tf.int64))
  fake, _ = gan.sample(num_points, tf.constant([seed, _CALIBRATION_SALT + 1], tf.int64))
  _, logit_fn = gan_callables(gan)
  return fit_calibration(logit_fn(real).numpy(), logit_fn(fake).numpy())


def sampler_kwargs(config, calibration):
  return dict(step_size=config.mcmc_step_size, joint=config.mcmc_joint,
              num_bins=config.wl_bins, t0=config.wl_t0,
              energy_range=tuple(config.wl_energy_range) or None,
              resample=config.wl_resample, calibration=calibration)


def _jsonable(value):
  if isinstance(value, np.ndarray):
    return _jsonable(value.tolist()) if value.dtype.kind == "f" else value.tolist()
  if isinstance(value, (float, np.floating)):
    return float(value) if np.isfinite(value) else None  # strict JSON has no NaN
  if isinstance(value, np.integer):
    return value.item()
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  return value


def _write_summaries(log_dir, diagnostics, energy):
  writer = tf.summary.create_file_writer(log_dir)
  with writer.as_default():
    for step, (accept, mean_energy) in enumerate(zip(
        diagnostics["acceptance_per_step"], diagnostics["energy_trace"])):
      tf.summary.scalar("chain/acceptance", accept, step=step)
      tf.summary.scalar("chain/mean_energy", mean_energy, step=step)
    tf.summary.histogram("final/energy", energy, step=0)
    for name in ("ess", "energy_ess", "step_size", "acceptance_rate", "energy_min",
                 "energy_max"):
      if name in diagnostics and np.ndim(diagnostics[name]) == 0:
        tf.summary.scalar(f"final/{name}", float(diagnostics[name]), step=0)
    for index, count in enumerate(diagnostics["energy_histogram"]):
      tf.summary.scalar("per_bin/visits", float(count), step=index)
    theta = diagnostics.get("theta")
    if theta is not None:
      theta = np.asarray(theta)
      for index, value in enumerate(theta.reshape(-1, theta.shape[-1]).mean(0)):
        tf.summary.scalar("per_bin/wl_theta", float(value), step=index)
  writer.flush()


def sample_run(config, strategy):
  """Samples the run in `config.model_dir`; returns the metrics dict."""
  from tf_stackelberg.training import Run  # pylint: disable=g-import-not-at-top
  out_dir = default_sample_dir(config)
  npz_path = os.path.join(out_dir, "samples.npz")
  if tf.io.gfile.exists(npz_path):
    raise config_lib.ConfigError(
        f"--sample_dir={out_dir} already holds samples.npz; choose another directory "
        "(existing samples are never overwritten)")
  run = Run(config, strategy)
  step = run.restore(require=True)
  gan = run.gan
  calibration = calibrate(gan, run.spec, config.seed) if config.calibrate else None
  generate_fn, logit_fn = gan_callables(gan)
  progress = keras.utils.Progbar(config.mcmc_steps, unit_name="step")
  result = sample_latents(
      config.sampler, generate_fn, logit_fn, gan.latent_dim, gan.num_generators,
      config.num_samples, config.mcmc_steps,
      tf.constant([config.seed, _SAMPLING_SALT], tf.int32),
      chunk_steps=max(1, min(config.mcmc_steps, 64)),
      progress_callback=lambda done, total: progress.update(done),
      jit_compile=config.jit_compile, **sampler_kwargs(config, calibration))
  x, k = np.asarray(result.x), np.asarray(result.k)
  quality = metrics_lib.mixture_metrics(x, run.spec.centers, run.spec.std,
                                        generator_ids=k,
                                        num_generators=gan.num_generators)
  tf.io.gfile.makedirs(out_dir)
  tmp = npz_path + ".tmp.npz"
  np.savez(tmp, z=np.asarray(result.z), k=k, x=x, energy=np.asarray(result.energy))
  tf.io.gfile.rename(tmp, npz_path, overwrite=True)
  diagnostics = {name: _jsonable(value) for name, value in result.diagnostics.items()}
  summary = {"step": step, "sampler": config.sampler, "calibration": calibration,
             **quality, "diagnostics": diagnostics}
  with tf.io.gfile.GFile(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump(summary, f, indent=2)
  image = run.scatter(x, k, title=f"{config.sampler.upper()} SAMPLES, STEP {step}")
  visualization.save_png(image, os.path.join(out_dir, "samples.png"))
  _write_summaries(os.path.join(out_dir, "logs"), result.diagnostics,
                   np.asarray(result.energy))
  print(f"Sampler {config.sampler} on step {step} of {config.model_dir}: acceptance "
        f"{float(result.diagnostics['acceptance_rate']):.3f}, energies visited "
        f"[{float(result.diagnostics['energy_min']):.2f}, "
        f"{float(result.diagnostics['energy_max']):.2f}]")
  print(metrics_lib.format_metrics(quality), flush=True)
  print(f"Wrote {out_dir}", flush=True)
  return summary
