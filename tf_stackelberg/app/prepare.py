"""The prepared discriminator (`--mode=prepare`, docs/design.md section 14.1).

The samplers read the discriminator logit as `log p_data / p_g` of the generator
they sample (section 5.3). The published gains of discriminator-driven sampling came
with a discriminator prepared for that; `prepare` does it in one step, on a copy of
the weights in memory, and writes the result beside the run's checkpoints:

1. Fine-tunes D alone on the frozen generator(s) with the logistic loss (Adam with a
   small learning rate, `--sampling.prepare_learning_rate`, beta_1 0.5, fresh
   state) on the training data without the held-out split (`app.held_out`), and
   stops early on the held-out logistic loss: measured every
   `--sampling.prepare_eval_every` updates against fixed fresh fakes, it stops after
   `--sampling.prepare_patience` measurements without a new best, and keeps the
   best weights (those before any update when none improves).
2. Warms up the spectral-norm power iterations: every spectrally normalised layer
   runs `--sampling.sn_warmup` iterations on its final kernel, so that the norm it
   divides by at inference is the converged one.
3. Evaluates D in one mode after training: inference (`training=False`: BatchNorm's
   moving statistics, the stored spectral-norm vectors, which it does not change)
   for the early stopping, the calibration, the report and the samplers alike.
   Only the fine-tuning updates run in training mode, as the game's did.
4. Fits the calibration on the held-out split against fresh fakes.
5. Writes `PREPARED_DIR/step_N/` (`--sampling.prepared_dir`, default
   `MODEL_DIR/prepared_discriminator`): `discriminator.*` (a TensorFlow checkpoint
   of the discriminator's variables), `prepared.json` (what was done, the step it
   was prepared from, the losses, the calibration, the held-out report before and
   after). The run's `checkpoints/` are never touched.

With `--sampling.prepare_method=class_ratio` the run's discriminator is left as it
is and a class-ratio network (`app.class_ratio`) takes its place in sampling: steps
1-2 give way to training that network, step 4 calibrates it, and step 5 writes it as
`class_ratio.keras` beside `prepared.json`.

`discriminator_for_sampling` chooses the discriminator of `--mode=sample`,
`--mode=diagnose` and `--mode=export` (`--sampling.discriminator`): the prepared one
of the run's newest step when there is one, else the run's.
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.app import class_ratio, energy_health, latent
from tf_stackelberg.common import files, salts
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.metrics import discriminator_metrics as dm
from tf_stackelberg.models.conv import spectral_norm_estimate

PREPARED_SUBDIR = "prepared_discriminator"
CHECKPOINT_PREFIX = "discriminator"
INFO_FILE = "prepared.json"
INFERENCE_MODE = ("inference (training=False): BatchNorm moving statistics and the "
                  "stored spectral-norm vectors, for the early stopping, the "
                  "calibration, the report and sampling")


def prepared_root(config):
  """The folder of the prepared discriminators of a run."""
  return config.sampling.prepared_dir or os.path.join(config.model_dir, PREPARED_SUBDIR)


def prepared_path(config, step):
  """The prepared discriminator of step `step`."""
  return os.path.join(prepared_root(config), f"step_{step}")


def prepared_steps(config):
  """The steps with a prepared discriminator, sorted."""
  root = prepared_root(config)
  if not tf.io.gfile.isdir(root):
    return []
  steps = []
  for name in tf.io.gfile.listdir(root):
    name = name.rstrip("/")
    if name.startswith("step_") and name[5:].isdigit() and tf.io.gfile.exists(
        os.path.join(root, name, INFO_FILE)):
      steps.append(int(name[5:]))
  return sorted(steps)


# ------------------------------------------------------------------ preparation
def spectral_norm_layers(model):
  """The spectrally normalised layers of `model` (those keeping a vector `u`)."""
  return [layer for layer in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
          if getattr(layer, "spectral_norm", False) and hasattr(layer, "u")]


def warm_up_spectral_norm(model, iterations):
  """Runs `iterations` power iterations on the kernel of every spectrally
  normalised layer of `model` and stores the vectors; returns the number of
  layers. The weights are unchanged; the norm the layers divide by becomes the
  converged estimate of the kernel's largest singular value."""
  layers = spectral_norm_layers(model)
  for layer in layers:
    kernel = tf.convert_to_tensor(layer.kernel)
    matrix = tf.reshape(kernel, [-1, kernel.shape[-1]])
    u = tf.math.l2_normalize(tf.convert_to_tensor(layer.u))
    layer.u.assign(_power_iterations(matrix, u, tf.constant(int(iterations))))
  return len(layers)


@tf.function(autograph=False)
def _power_iterations(matrix, u, iterations):
  """`u` after `iterations` power iterations on `matrix` (one compiled loop)."""
  return tf.while_loop(lambda i, _: i < iterations,
                       lambda i, v: (i + 1, spectral_norm_estimate(matrix, v)[0]),
                       (tf.constant(0), u))[1]


def finetune_with_early_stopping(run, sampling, logit_fn):
  """Fine-tunes the run's discriminator (step 1 of the module text); returns what
  was done as a dict. The best weights are in the model when it returns."""
  gan, seed, discriminator = run.gan, run.config.seed, run.gan.discriminator
  batch_size = sampling.prepare_batch_size
  real, fake = latent.calibration_sets(run)

  def held_out_loss():
    return dm.logistic_loss(energy_health.batched_logits(logit_fn, real),
                            energy_health.batched_logits(logit_fn, fake))

  best_loss, best_step = held_out_loss(), 0
  best_weights = [v.numpy() for v in discriminator.variables]
  losses, bad, steps_run = [[0, best_loss]], 0, 0
  if sampling.prepare_steps > 0:
    optimizer = keras.optimizers.Adam(sampling.prepare_learning_rate, beta_1=0.5)

    @tf.function
    def update(real_batch, index):
      fakes, _ = gan.sample(batch_size, tf.stack(
          [tf.constant(seed + salts.PREPARE, tf.int64), index]))
      return latent.logistic_discriminator_update(discriminator, optimizer,
                                                  real_batch, fakes)

    batches = latent.held_out_split(run).training_batches(
        batch_size, seed + salts.PREPARE, sampling.prepare_steps)
    for i, batch in enumerate(batches):
      update(batch, tf.constant(i, tf.int64))
      steps_run = i + 1
      if steps_run % sampling.prepare_eval_every and steps_run < sampling.prepare_steps:
        continue
      loss = held_out_loss()
      losses.append([steps_run, loss])
      if loss < best_loss:
        best_loss, best_step, bad = loss, steps_run, 0
        best_weights = [v.numpy() for v in discriminator.variables]
      else:
        bad += 1
        if bad >= sampling.prepare_patience:
          break
  for variable, value in zip(discriminator.variables, best_weights):
    variable.assign(value)
  return {"learning_rate": sampling.prepare_learning_rate,
          "max_steps": sampling.prepare_steps, "batch_size": batch_size,
          "eval_every": sampling.prepare_eval_every,
          "patience": sampling.prepare_patience, "steps_run": steps_run,
          "best_step": best_step, "best_held_out_loss": best_loss,
          "stopped_early": steps_run < sampling.prepare_steps,
          "held_out_losses": losses}


def prepare(run, step, out_dir):
  """Prepares the discriminator of the restored `run` (step `step`) and writes it
  into `out_dir`; returns the contents of `prepared.json`."""
  if run.config.sampling.prepare_method == "class_ratio":
    return prepare_class_ratio(run, step, out_dir)
  sampling, started = run.config.sampling, time.monotonic()
  logit_fn = latent.gan_callables(run.gan)[1]
  before = energy_health.held_out_report(run, logit_fn)
  finetuning = finetune_with_early_stopping(run, sampling, logit_fn)
  sn_layers = warm_up_spectral_norm(run.gan.discriminator, sampling.sn_warmup)
  after = energy_health.held_out_report(run, logit_fn)  # fits the calibration too
  info = {"step": step, "model_dir": run.config.model_dir, "method": "finetune",
          "discriminator": run.config.model.discriminator,
          "held_out": after["held_out"],
          "held_out_fraction": sampling.held_out_fraction, "seed": run.config.seed,
          "finetuning": finetuning,
          "spectral_norm": {"layers": sn_layers,
                            "warmup_iterations": sampling.sn_warmup if sn_layers else 0},
          "discriminator_mode": INFERENCE_MODE,
          "calibration": after["calibration"],
          "held_out_before": before, "held_out_after": after,
          "seconds": time.monotonic() - started}
  with files.storage_errors(out_dir):
    tf.train.Checkpoint(discriminator=run.trackables["discriminator"]).write(
        os.path.join(out_dir, CHECKPOINT_PREFIX))
  files.write_json(os.path.join(out_dir, INFO_FILE), info)
  return info


def prepare_class_ratio(run, step, out_dir):
  """`--sampling.prepare_method=class_ratio`: trains the class-ratio network of the
  restored `run` (`app.class_ratio`), calibrates it on the held-out split and writes
  it into `out_dir`; returns the contents of `prepared.json`."""
  started = time.monotonic()
  before = energy_health.held_out_report(run, latent.gan_callables(run.gan)[1])
  network, built = class_ratio.prepare_class_ratio(run, run.config.sampling)
  after = energy_health.held_out_report(run, latent.gan_callables(run.gan, network)[1])
  info = {"step": step, "model_dir": run.config.model_dir, "method": "class_ratio",
          "network": class_ratio.NETWORK_FILE, "class_ratio": built,
          "held_out": after["held_out"],
          "held_out_fraction": run.config.sampling.held_out_fraction,
          "seed": run.config.seed, "calibration": after["calibration"],
          "held_out_before": before, "held_out_after": after,
          "seconds": time.monotonic() - started}
  with files.storage_errors(out_dir):
    network.save(os.path.join(out_dir, class_ratio.NETWORK_FILE))
  files.write_json(os.path.join(out_dir, INFO_FILE), info)
  return info


def describe(info):
  """What a prepared discriminator is, in a few words, for console lines."""
  if info.get("method") == "class_ratio":
    head = info["class_ratio"]["head"]
    return (f"class-ratio network, classifier held-out accuracy "
            f"{info['class_ratio']['classifier']['held_out_accuracy']:.3f}, head epoch "
            f"{head['best_epoch']} of {head['epochs_run']} kept")
  tuned = info["finetuning"]
  return f"{tuned['best_step']} of {tuned['steps_run']} fine-tuning updates kept"


def check_destination(config, step):
  """`ConfigError` when step `step` already has a prepared discriminator (nothing
  is ever replaced)."""
  path = prepared_path(config, step)
  if tf.io.gfile.exists(path) and not files.is_empty_directory(path):
    raise ConfigError(f"{path} already holds a prepared discriminator of step {step} "
                      "(--mode=sample uses it); to prepare another, choose a new "
                      "--sampling.prepared_dir")
  return path


# ------------------------------------------------------------------ use
def load_prepared(run, path):
  """Loads the prepared discriminator in `path`: a fine-tuned one is restored into
  `run`; returns `(info, class-ratio network or None)`."""
  info = files.read_json(os.path.join(path, INFO_FILE))
  if info.get("method") == "class_ratio":
    return info, class_ratio.load_network(os.path.join(path, class_ratio.NETWORK_FILE))
  try:
    status = tf.train.Checkpoint(discriminator=run.trackables["discriminator"]).read(
        os.path.join(path, CHECKPOINT_PREFIX))
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ConfigError(f"{path}: the prepared discriminator does not fit this run's "
                      f"discriminator ({str(e).strip().splitlines()[0][:200]})") from e
  return info, None


def discriminator_for_sampling(run, step, config):
  """Loads the discriminator `--sampling.discriminator` chooses and prints which;
  returns `(calibration or None, {'source', 'step', 'path', 'method'}, network)`,
  `network` the class-ratio network to use in the discriminator's place, or None."""
  sampling = config.sampling
  choice, steps = sampling.discriminator, prepared_steps(config)
  path = prepared_path(config, step)
  if choice == "prepared" and step not in steps:
    found = f" (it holds steps {', '.join(map(str, steps))})" if steps else ""
    raise ConfigError(f"--sampling.discriminator=prepared: no prepared discriminator "
                      f"of step {step}, the run's newest, in {prepared_root(config)}"
                      f"{found}; run --mode=prepare first")
  if choice != "run" and step in steps:
    info, network = load_prepared(run, path)
    print(f"Discriminator: prepared ({path}: {describe(info)}, held-out AUC "
          f"{info['held_out_before']['auc']:.3f} -> "
          f"{info['held_out_after']['auc']:.3f}).", flush=True)
    calibration = tuple(info["calibration"]) if sampling.calibrate else None
    return calibration, {"source": "prepared", "step": step, "path": path,
                         "method": info.get("method", "finetune")}, network
  if choice == "auto" and steps:
    print(f"Discriminator: the run's (step {step}); the prepared ones in "
          f"{prepared_root(config)} are of other steps "
          f"({', '.join(map(str, steps))}) and are ignored: --mode=prepare prepares "
          "this one.", flush=True)
  else:
    print(f"Discriminator: the run's (step {step})"
          + ("; --mode=prepare prepares one for sampling." if choice == "auto" else "."),
          flush=True)
  calibration = latent.calibrate_run(run) if sampling.calibrate else None
  return calibration, {"source": "run", "step": step, "path": None}, None
