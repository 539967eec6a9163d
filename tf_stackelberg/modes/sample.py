"""`--mode=sample`: run a latent sampler on a trained run and save what it drew.

Writes into `--sampling.output_dir` (default `MODEL_DIR/samples_SAMPLER`):

```none
samples.npz     z, k (generator index), x = G_k(z), energy of every sample
metrics.json    the evaluators' results on the samples and the sampler's diagnostics
samples.png     the evaluators' images (for 2-D data: the samples over the real data)
logs/           TensorBoard: acceptance and mean energy per step, the final energy
                histogram, and per-bin curves (x axis = bin index) of the visits and of
                the Wang-Landau bias theta
```

An existing `samples.npz` is never replaced: choose another `--sampling.output_dir`.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.sampling.sample import sample_latents
from tf_stackelberg.training import latent
from tf_stackelberg.training.run import Run
from tf_stackelberg.training.trainer import save_images

# Stateless seed salt of the chains, distinct from the training and evaluation streams.
SAMPLING_SALT = 13


def output_dir(config):
  return config.sampling.output_dir or os.path.join(config.model_dir,
                                                    f"samples_{config.sampling.sampler}")


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


@register_mode("sample")
def sample(config, strategy):
  """Samples the run in `config.model_dir`; returns the metrics dict."""
  sampling = config.sampling
  out_dir = output_dir(config)
  npz_path = os.path.join(out_dir, "samples.npz")
  if tf.io.gfile.exists(npz_path):
    raise ConfigError(
        f"--sampling.output_dir={out_dir} already holds samples.npz; choose another "
        "directory (existing samples are never overwritten)")
  run = Run(config, strategy)
  step = run.restore(require=True)
  model = latent.run_latent_model(run, sampling.calibrate)
  progress = keras.utils.Progbar(sampling.steps, unit_name="step")
  result = sample_latents(
      sampling.sampler, model, sampling.num_samples, sampling.steps,
      tf.constant([config.seed, SAMPLING_SALT], tf.int32),
      latent.sampler_settings(sampling), chunk_steps=max(1, min(sampling.steps, 64)),
      progress_callback=lambda done, total: progress.update(done),
      jit_compile=config.runtime.jit_compile)
  x, k = np.asarray(result.x), np.asarray(result.k)
  results = evaluation.run_evaluators(run.evaluators, step=step, samples=(x, k))
  files.write_npz(npz_path, z=np.asarray(result.z), k=k, x=x,
                  energy=np.asarray(result.energy))
  summary = {"step": step, "sampler": sampling.sampler, "calibration": model.calibration,
             **evaluation.without_images(run.evaluators, results),
             "diagnostics": result.diagnostics}
  files.write_json(os.path.join(out_dir, "metrics.json"), summary)
  save_images(run, results, out_dir)
  _write_summaries(os.path.join(out_dir, "logs"), result.diagnostics,
                   np.asarray(result.energy))
  print(f"Sampler {sampling.sampler} on step {step} of {config.model_dir}: acceptance "
        f"{float(result.diagnostics['acceptance_rate']):.3f}, energies visited "
        f"[{float(result.diagnostics['energy_min']):.2f}, "
        f"{float(result.diagnostics['energy_max']):.2f}]")
  print(evaluation.format_results(run.evaluators, results), flush=True)
  print(f"Wrote {out_dir}", flush=True)
  return summary
