"""`--mode=sample`: run a latent sampler on a trained run and save what it drew.

With `--sampling.generator_file` and `--sampling.discriminator_file` it samples a GAN
trained elsewhere instead (`tf_stackelberg.app.external`; no run directory, the data
set of `--data.*`).

Writes into `--sampling.output_dir` (default `MODEL_DIR/samples_SAMPLER`, for a GAN
trained elsewhere `samples_SAMPLER` beside the generator file):

```none
samples.npz     z, k (generator index), x = G_k(z), energy of every sample
metrics.json    the evaluators' results on the samples, the sampler's diagnostics,
                the discriminator used and the energy health report
                ("energy_health", `app.energy_health`; one console line); for `wl`
                also, under `unweighted`, their results on the chains' final states
                without reweighting (the WL-GAN reference code's output)
samples.png     the evaluators' images (for 2-D data: the samples over the real data;
                for images: a grid, row k made by generator k)
energy_histogram.png  the energies the chains visited (the main phase's visits per
                bin: the Wang-Landau paper's Fig. 1 view for one sampler)
logs/           TensorBoard: acceptance and mean energy per step, the final energy
                histogram, and per-bin curves (x axis = bin index) of the visits and of
                the Wang-Landau bias theta; the report's health/* and target_test/*
```

With `--sampling.record_steps` (e.g. `0,10,25,50,100,200`) the evaluators also score
the chains' states at those steps (0: the generator's own samples; for `wl` the raw
chain states, not the reweighted draws): `metrics.json["along_chain"]` maps each step to
its results, and TensorBoard gets `along_chain/*` scalars with x axis = chain step
(docs/design.md section 14.3).

The discriminator is the prepared one of the run's newest step when `--mode=prepare`
made one, else the run's (`--sampling.discriminator`; one line says which).

Under a strategy of several replicas (`--runtime.strategy=mirrored` with several GPUs
or `--runtime.cpu_devices=2`) the chains are sharded over the replicas and give the
samples of a one-device run (`sampling.sharding`); where XLA cannot compile the sharded
chains (logical CPU devices) a one-line note says so and they run uncompiled.

The directory is written beside its destination and renamed into place when complete,
so it appears whole or not at all; an existing, non-empty output directory is never
replaced: choose another `--sampling.output_dir`. When the sampler's health check finds
a problem (chains that barely moved, Wang-Landau visits piled up in an end bin), the
outputs are still written, the problems are listed in `metrics.json`, and the command
exits with status 4 (see `sampling.diagnostics.health_problems`).
"""

import os
import time

import numpy as np
import tensorflow as tf

from tf_stackelberg import visualization
from tf_stackelberg.app import energy_health, external, latent, prepare
from tf_stackelberg.common import files, salts
from tf_stackelberg.console import text
from tf_stackelberg.console.progress import ProgressLine
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.sampling import sharding
from tf_stackelberg.sampling.sample import sample_latents
from tf_stackelberg.training.run import Run


def output_dir(config):
  """`--sampling.output_dir`, by default `samples_SAMPLER` in the run directory, or for
  a GAN trained elsewhere beside `--sampling.generator_file`."""
  sampling = config.sampling
  base = (os.path.dirname(os.path.abspath(sampling.generator_file))
          if sampling.generator_file else config.model_dir)
  return sampling.output_dir or os.path.join(base, f"samples_{sampling.sampler}")


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
  writer.close()


class UnhealthySampling(RuntimeError):
  """The sampler's diagnostics failed; the outputs were written for inspection."""


@register_mode("sample")
def sample(config, strategy):
  """Samples the run in `config.model_dir`; returns the metrics dict.

  Raises:
    ConfigError: bad settings, or the output directory already holds outputs.
    StorageError: the output directory cannot be written.
    UnhealthySampling: the health check failed (outputs written).
  """
  sampling = config.sampling
  latent.check_steps(sampling)
  out_dir = output_dir(config)
  with files.staged_directory(out_dir, "--sampling.output_dir") as staging:
    summary, problems = _sample_into(config, strategy, staging)
  print(f"Wrote {out_dir}", flush=True)
  if problems:
    raise UnhealthySampling(
        f"sampler {sampling.sampler} failed its health check (outputs kept in "
        f"{out_dir}): " + "; ".join(problems))
  return summary


def _sample_into(config, strategy, out_dir):
  """Runs the sampler and writes its outputs into `out_dir`; returns the summary and
  the health problems."""
  sampling = config.sampling
  run, step = _restored(config, strategy)
  calibration, source, network = _discriminator(run, step, config)
  model = latent.latent_model(run.gan, calibration, network)
  progress, started = ProgressLine(), time.monotonic()
  result = sample_latents(
      sampling.sampler, model, sampling.num_samples, sampling.steps,
      tf.constant([config.seed, salts.SAMPLING], tf.int32),
      latent.sampler_settings(sampling), chunk_steps=max(1, min(sampling.steps, 64)),
      progress_callback=lambda done, total: progress.update(
          lambda: _progress_text(done, total, time.monotonic() - started,
                                 progress.width)),
      jit_compile=config.runtime.jit_compile, strategy=_sampling_strategy(run),
      record_steps=sampling.record_steps)
  progress.clear()
  sampling_seconds = time.monotonic() - started
  x, k = np.asarray(result.x), np.asarray(result.k)
  results = evaluation.run_evaluators(run.evaluators, step=step, samples=(x, k))
  files.write_npz(os.path.join(out_dir, "samples.npz"), z=np.asarray(result.z), k=k,
                  x=x, energy=np.asarray(result.energy))
  problems = list(result.diagnostics.get("problems", []))
  unweighted = _evaluate_unweighted(run, step, model, result.diagnostics)
  summary = {"step": step, "sampler": sampling.sampler, "calibration": model.calibration,
             **evaluation.without_images(run.evaluators, results),
             **unweighted, "diagnostics": result.diagnostics, "discriminator": source}
  if result.snapshots:
    summary["along_chain"] = _evaluate_along_chain(run.evaluators, step,
                                                   result.snapshots, out_dir)
  health = _energy_health(config, run, model, step, out_dir, sampling_seconds)
  if health is not None:
    summary["energy_health"] = health
  files.write_json(os.path.join(out_dir, "metrics.json"), summary)
  evaluation.save_images(run.evaluators, results, out_dir)
  _save_energy_histogram(out_dir, sampling.sampler, result.diagnostics)
  with files.storage_errors(os.path.join(out_dir, "logs")):
    _write_summaries(os.path.join(out_dir, "logs"), result.diagnostics,
                     np.asarray(result.energy))
  print(f"Sampler {sampling.sampler} on {_source(config, step)}: acceptance "
        f"{float(result.diagnostics['acceptance_rate']):.3f}, energies visited "
        f"[{float(result.diagnostics['energy_min']):.2f}, "
        f"{float(result.diagnostics['energy_max']):.2f}]")
  print(evaluation.format_results(run.evaluators, results), flush=True)
  if health is not None:
    whose = "the prepared" if source["source"] == "prepared" else "the run's"
    print(energy_health.console_line(health, whose), flush=True)
  return summary, problems


def _evaluate_along_chain(evaluators, step, snapshots, out_dir):
  """Scores the chains' states at each recorded step (`--sampling.record_steps`).

  Returns `{str(chain step): evaluator results without images, plus the mean
  energy}` for `metrics.json`, writes the scalar results to TensorBoard under
  `along_chain/` with x axis = chain step, and prints one summary line per step.
  """
  along = {}
  log_dir = os.path.join(out_dir, "logs")
  with files.storage_errors(log_dir):
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
      for chain_step, snapshot in sorted(snapshots.items()):
        results = evaluation.run_evaluators(
            evaluators, step=step, samples=(np.asarray(snapshot.x),
                                            np.asarray(snapshot.k)))
        energy = np.asarray(snapshot.energy, np.float64)
        mean_energy = float(np.mean(energy[np.isfinite(energy)]))
        along[str(chain_step)] = {**evaluation.without_images(evaluators, results),
                                  "mean_energy": mean_energy}
        for name, value in evaluation.scalars(evaluators, results).items():
          tf.summary.scalar(f"along_chain/{name}", value, step=chain_step)
        tf.summary.scalar("along_chain/mean_energy", mean_energy, step=chain_step)
        print(f"Chain step {chain_step}: "
              f"{evaluation.summary_line(evaluators, results)}", flush=True)
    writer.close()
  return along


def _restored(config, strategy):
  """`(run, step)`: the trained run in `--model_dir`, restored, or the GAN trained
  elsewhere of `--sampling.generator_file` (docs/design.md section 14.5; no
  checkpoint, step 0), checked before any sampling."""
  if config.sampling.generator_file:
    return external.external_run(config, strategy), 0
  run = Run(config, strategy)
  return run, run.restore(require=True)


def _source(config, step):
  """What was sampled, for the console."""
  sampling = config.sampling
  if sampling.generator_file:
    return f"{sampling.generator_file} and {sampling.discriminator_file}"
  return f"step {step} of {config.model_dir}"


def _evaluate_unweighted(run, step, model, diagnostics):
  """The evaluators on a sampler's unweighted draws, as `{"unweighted": results}`.

  `'wl'` also returns its chains' final states without reweighting (draws of the
  flattened law, the WL-GAN reference code's output; `samplers/wl.py`), as
  `unweighted_*` diagnostics. They are taken out of `diagnostics` (metrics.json keeps
  only their evaluation) and scored beside the reweighted draws; other samplers give
  `{}`.
  """
  names = ("unweighted_z", "unweighted_k", "unweighted_energy")
  if names[0] not in diagnostics:
    return {}
  z, k, _ = (diagnostics.pop(name) for name in names)
  x = np.asarray(model.generate_fn(tf.constant(z), tf.constant(k)))
  results = evaluation.run_evaluators(run.evaluators, step=step, samples=(x, np.asarray(k)))
  print("Unweighted (the chains' final states):", flush=True)
  print(evaluation.format_results(run.evaluators, results), flush=True)
  return {"unweighted": evaluation.without_images(run.evaluators, results)}


def _discriminator(run, step, config):
  """`(calibration or None, source, network or None)`: the discriminator
  `--sampling.discriminator` chooses for a trained run (`app.prepare`), or the file
  of a GAN trained elsewhere, calibrated on the held-out data as a run's."""
  sampling = config.sampling
  if not sampling.generator_file:
    return prepare.discriminator_for_sampling(run, step, config)
  print(f"Discriminator: {sampling.discriminator_file}.", flush=True)
  calibration = latent.calibrate_run(run) if sampling.calibrate else None
  return calibration, {"source": "file", "step": None,
                       "path": sampling.discriminator_file}, None


def _energy_health(config, run, model, step, out_dir, sampling_seconds):
  """The energy health report of the sampled discriminator (`app.energy_health`),
  with its TensorBoard scalars in `out_dir/logs`; None with
  `--sampling.health_report=false`."""
  if not config.sampling.health_report:
    return None
  report = energy_health.energy_health(run, model.logit_fn, model.calibration,
                                       config.sampling, step)
  report["sampling_seconds"] = sampling_seconds
  report["share_of_sampling_time"] = report["seconds"] / max(sampling_seconds, 1e-9)
  with files.storage_errors(os.path.join(out_dir, "logs")):
    energy_health.write_summaries(os.path.join(out_dir, "logs"), report)
  return report


def _sampling_strategy(run):
  """The strategy the chains are sharded over: the run's, when all its replicas are
  in this process; otherwise none (each process samples every chain itself)."""
  if sharding.in_one_process(run.strategy):
    return run.strategy
  print(f"Sampling on this process alone: the chains are sharded only over replicas "
        f"of one process, and {run.strategy.num_replicas_in_sync} replicas span "
        "several.", flush=True)
  return None


def _save_energy_histogram(out_dir, sampler, diagnostics):
  """`energy_histogram.png`: the visits per energy bin of the main phase."""
  counts = np.asarray(diagnostics.get("energy_histogram", []), np.float64)
  edges = np.asarray(diagnostics.get("bin_edges", []), np.float64)
  if counts.sum() <= 0 or edges.size != counts.size + 1 or not np.all(np.diff(edges) > 0):
    return  # no chains moved (e.g. --sampling.sampler=none): nothing to draw
  centres = (edges[:-1] + edges[1:]) / 2
  image = visualization.energy_histograms(
      {sampler: centres}, bins=edges, weights={sampler: counts},
      title=f"energies visited by {sampler}")
  visualization.save_png(image, os.path.join(out_dir, "energy_histogram.png"))


def _progress_text(done, total, seconds, width):
  eta = (total - done) * seconds / done if done else None
  return text.fit_fields([f"MCMC step {done}/{total}", text.bar(done / total, 30),
                          f"ETA {text.format_duration(eta)}"], width)
