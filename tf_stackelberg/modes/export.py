"""`--mode=export`: restore the latest checkpoint and write the SavedModel, with the
`mcmc_sample` endpoint planned from the `--sampling.*` settings."""

import os

import tensorflow as tf

from tf_stackelberg.export.mcmc_endpoint import INPUT_SIGNATURE, make_mcmc_sample_fn
from tf_stackelberg.export.saved_model import SIGNATURES, check_destination, export_gan
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.sampling.runner import sample_latents
from tf_stackelberg.training import latent
from tf_stackelberg.training.run import Run

# Stateless seed salt of the export-time warm-up that sets the energy range.
_WARMUP_SALT = 17
_WARMUP_CHAINS = 256


def default_export_dir(config):
  return config.export_dir or os.path.join(config.model_dir, "saved_model")


def mcmc_endpoint(run, config):
  """The `mcmc_sample` endpoint of `run`, planned with `config`'s sampler settings."""
  gan, sampling = run.gan, config.sampling
  calibration = latent.calibrate_run(run) if sampling.calibrate else None
  generate_fn, logit_fn = latent.gan_callables(gan)
  energy_range = tuple(sampling.wl_energy_range)
  if not energy_range:
    warmup = sample_latents(
        "wl", generate_fn, logit_fn, gan.latent_dim, gan.num_generators,
        _WARMUP_CHAINS, max(10, sampling.steps // 4),
        tf.constant([config.seed, _WARMUP_SALT], tf.int32),
        step_size=sampling.step_size, num_bins=sampling.wl_bins, t0=sampling.wl_t0,
        calibration=calibration, jit_compile=False)
    energy_range = tuple(float(e) for e in warmup.diagnostics["energy_range"])
  fn = make_mcmc_sample_fn(
      generate_fn, logit_fn, gan.latent_dim, gan.num_generators, energy_range,
      calibration, num_bins=sampling.wl_bins, step_size=sampling.step_size,
      t0=sampling.wl_t0, num_adaptation_steps=sampling.steps // 2,
      num_chains=min(sampling.num_samples, 1000))
  return fn, INPUT_SIGNATURE


@register_mode("export")
def export(config, strategy):
  """Exports the run in `config.model_dir`; returns the export directory."""
  path = default_export_dir(config)
  check_destination(path)  # before the warm-up, which takes a while
  run = Run(config, strategy)
  step = run.restore(require=True)
  extra = {"mcmc_sample": mcmc_endpoint(run, config)}
  path = export_gan(run.gan, path, extra)
  names = ", ".join(list(SIGNATURES) + sorted(extra))
  print(f"Exported step {step} of {config.model_dir} to {path} (signatures: {names}).",
        flush=True)
  return path
