"""Runs the Stackelberg game: build, restore, fit interval by interval, evaluate, save.

A run lives in one model directory:

```none
MODEL_DIR/flags.json            resolved settings (a resumed run must match them)
MODEL_DIR/checkpoints/          tf.train.Checkpoint of both players and optimizers
MODEL_DIR/logs/{train,eval}/    TensorBoard scalars and the scatter image
MODEL_DIR/eval_history.json     the metrics of every evaluation
MODEL_DIR/metrics.json          the metrics at the end of training
MODEL_DIR/samples.png           real data and each generator's samples
```

Training advances in intervals of `eval_every` steps. After each interval the losses
are checked (a non-finite loss stops the run and keeps the last good checkpoint), a
checkpoint is written, the mixture metrics are computed and logged. Every batch and
latent is a function of (seed, step), so a run restarted from its last checkpoint
continues exactly as if it had never stopped.
"""

import dataclasses
import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg import config as config_lib
from tf_stackelberg import metrics as metrics_lib
from tf_stackelberg import visualization
from tf_stackelberg.data import mixtures
from tf_stackelberg.game import build_gan

CHECKPOINT_SUBDIR = "checkpoints"
HISTORY_FILE = "eval_history.json"
METRICS_FILE = "metrics.json"
FIGURE_FILE = "samples.png"
# Real points drawn under the generated ones in the scatter plot.
_PLOT_REAL, _PLOT_FAKE = 2000, 2500
# Stateless seed salt of the evaluation samples (distinct from training streams).
_EVAL_SALT = 7


class TrainingDivergedError(RuntimeError):
  """A loss became NaN or infinite; the message names the step."""


def seed_everything(config):
  """Same seed, same run: seeds Python/NumPy/TF and enables TF op determinism."""
  keras.utils.set_random_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()


def write_json(path, value):
  """Writes JSON atomically (a crash never leaves a truncated file)."""
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "w") as f:
    json.dump(value, f, indent=2)
  tf.io.gfile.rename(tmp, path, overwrite=True)


class _VariableSet(tf.Module):
  """Every variable of a Keras model (BatchNorm statistics included), by path.

  Keras 3 does not expose layers kept in Python lists to `tf.train.Checkpoint`, so
  the model's variables are listed explicitly instead of relying on its tracking.
  """

  def __init__(self, model):
    super().__init__(name=model.name)
    self.by_path = {v.path.replace("/", "."): v for v in model.variables}


class Run:
  """A built model with its checkpoint, restored from `model_dir` if possible.

  Attributes:
    config: the `Config`.
    strategy: the `tf.distribute.Strategy` the model was built under.
    gan: the compiled `StackelbergGAN`.
    spec: the `MixtureSpec` of the data.
    manager: the `tf.train.CheckpointManager` of `model_dir/checkpoints`.
  """

  def __init__(self, config, strategy):
    if config.cpu_replicas > 1 and (config.jit_compile or config.steps_per_execution > 1):
      # Measured with TF 2.21 / Keras 3.15 on logical CPU devices: XLA clusters cannot
      # reach the variables of the other logical device, and Keras' multi-step loop
      # fails with an unfed placeholder inside the distributed iterator's cond. The
      # distributed test path therefore runs one uncompiled step per call.
      print("--cpu_replicas > 1: training with --jit_compile=false and "
            "--steps_per_execution=1 (logical CPU devices support no more).", flush=True)
      config = dataclasses.replace(config, jit_compile=False, steps_per_execution=1)
    self.config = config
    self.strategy = strategy
    self.spec = mixtures.spec_from_config(config)
    # The backdrop and window of every scatter plot of this run (fixed per run).
    self._plot_real = mixtures.fixed_set(self.spec, _PLOT_REAL, config.seed).numpy()
    span = 1.25 * (float(np.abs(self.spec.centers).max()) + 6.0 * self.spec.std)
    self._plot_extent = (-span, span, -span, span)
    with strategy.scope():
      self.gan = build_gan(config)
    self.checkpoint = tf.train.Checkpoint(
        generator=_VariableSet(self.gan.generator),
        discriminator=_VariableSet(self.gan.discriminator),
        g_optimizer=self.gan.g_optimizer, d_optimizer=self.gan.d_optimizer)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, os.path.join(config.model_dir, CHECKPOINT_SUBDIR),
        max_to_keep=config.keep_checkpoints)

  @property
  def step(self):
    return int(self.gan.step.numpy())

  def restore(self, require=False):
    """Restores the latest checkpoint; returns its step (0 if there is none)."""
    latest = self.manager.latest_checkpoint
    if latest is None:
      if require:
        raise config_lib.ConfigError(
            f"--model_dir={self.config.model_dir} holds no checkpoint to load")
      return 0
    self.checkpoint.restore(latest).assert_existing_objects_matched()
    return self.step

  def evaluate(self, num_samples=None):
    """Mixture metrics and a scatter image of `num_samples` fresh model samples."""
    n = num_samples or self.config.eval_samples
    seed = tf.constant([self.config.seed, _EVAL_SALT], tf.int64)
    samples, ids = self.gan.sample(n, seed)
    samples, ids = samples.numpy(), ids.numpy()
    result = metrics_lib.mixture_metrics(
        samples, self.spec.centers, self.spec.std, generator_ids=ids,
        num_generators=self.gan.num_generators)
    return result, self.scatter(samples, ids, title=self.title())

  def title(self):
    """Figure title: the model and the step (the plot font is upper case)."""
    if self.config.generator == "multi_branch":
      model = f"MULTI-BRANCH ({self.config.num_branches} BRANCHES)"
    elif self.gan.num_generators == 1:
      model = "ONE GENERATOR " + "-".join(
          map(str, (2,) + self.config.generator_hidden + (2,)))
    else:
      model = f"{self.gan.num_generators} GENERATORS"
    return f"{model}, STEP {self.step}"

  def scatter(self, samples, ids, title=None):
    return visualization.render_scatter(
        self._plot_real, samples[:_PLOT_FAKE], ids[:_PLOT_FAKE],
        self.gan.num_generators, extent=self._plot_extent, title=title)


def _load_history(path, up_to_step):
  if not tf.io.gfile.exists(path):
    return []
  with tf.io.gfile.GFile(path) as f:
    history = json.load(f)
  # Evaluations after the restored checkpoint belong to a run that did not survive.
  return [h for h in history if h["step"] <= up_to_step]


def _summarize(writer, step, values):
  with writer.as_default(step=step):
    for name, value in values.items():
      tf.summary.scalar(name, value)


def _progress_verbosity():
  # A live progress bar on a terminal, one line per interval in logs.
  return 1 if sys.stdout.isatty() else 2


def _check_finite(run, interval_start):
  bad_step = run.gan.first_nonfinite_step()
  weights_ok = all(np.all(np.isfinite(v.numpy())) for v in run.gan.trainable_variables)
  if bad_step is None and weights_ok:
    return
  where = f"step {bad_step}" if bad_step is not None else f"steps after {interval_start}"
  last = run.manager.latest_checkpoint or "none (no checkpoint was written yet)"
  raise TrainingDivergedError(
      f"training stopped: a loss became non-finite at {where}; nothing was saved after "
      f"it, and the last good checkpoint is kept: {last}")


class _IntervalEnd(keras.callbacks.Callback):
  """Calls `fn(logs, seconds)` at the end of every epoch (= evaluation interval)."""

  def __init__(self, fn):
    super().__init__()
    self._fn = fn
    self._began = None

  def on_epoch_begin(self, epoch, logs=None):
    self._began = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self._fn(dict(logs or {}), time.perf_counter() - self._began)


class _Trainer:
  """The state of one `train` call: writers, history and the interval callback."""

  def __init__(self, config, strategy):
    self.config = config
    self.run = Run(config, strategy)
    self.start = self.run.restore()
    self.step = self.start
    self.history_path = os.path.join(config.model_dir, HISTORY_FILE)
    self.history = _load_history(self.history_path, self.start)
    logs_dir = os.path.join(config.model_dir, "logs")
    self.train_writer = tf.summary.create_file_writer(os.path.join(logs_dir, "train"))
    self.eval_writer = tf.summary.create_file_writer(os.path.join(logs_dir, "eval"))
    self.train_seconds = 0.0
    self.result, self.image = None, None

  def fit(self, num_steps, epochs, initial_epoch):
    """`num_steps` steps as epochs of `num_steps / (epochs - initial_epoch)` steps."""
    config = self.config
    data = mixtures.make_dataset(self.run.spec, config.batch_size, config.seed,
                                 config.dataset_size, config.shuffle,
                                 start_step=self.step, num_steps=num_steps)
    # Keras splits each global batch across the replicas of the strategy scope.
    self.run.gan.fit(data, epochs=epochs, initial_epoch=initial_epoch,
                     steps_per_epoch=num_steps // (epochs - initial_epoch),
                     callbacks=[_IntervalEnd(self.end_interval)],
                     shuffle=False, verbose=_progress_verbosity())

  def end_interval(self, logs, seconds):
    """Check, checkpoint, evaluate and log (in this order: never save a NaN model)."""
    run, config = self.run, self.config
    _check_finite(run, self.step)
    steps = run.step - self.step
    self.step = run.step
    self.train_seconds += seconds
    run.manager.save(checkpoint_number=self.step)
    losses = {name: float(value) for name, value in logs.items()}
    losses["steps_per_second"] = steps / seconds
    _summarize(self.train_writer, self.step, losses)

    self.result, self.image = result, image = run.evaluate()
    quality = {k: result[k] for k in ("modes", "high_quality", "reverse_kl")}
    _summarize(self.eval_writer, self.step, quality)
    with self.eval_writer.as_default(step=self.step):
      tf.summary.image("samples", visualization.image_summary_tensor(image))
    self.history.append({"step": self.step, "seconds": seconds, **losses, **quality})
    write_json(self.history_path, self.history)
    print(f"step {self.step}/{config.train_steps}: modes {result['modes']}/"
          f"{result['num_modes_total']}, high quality "
          f"{100 * result['high_quality']:.1f}%, reverse KL "
          f"{result['reverse_kl']:.4f} ({steps / seconds:.1f} steps/s)", flush=True)

  def finish(self):
    """Final metrics, figure and summary table; returns the metrics."""
    config = self.config
    if self.result is None:  # nothing left to train: evaluate the restored model
      self.result, self.image = self.run.evaluate()
    self.train_writer.flush()
    self.eval_writer.flush()
    trained = self.step - self.start
    final = {"step": self.step, "trained_steps_this_run": trained,
             "train_seconds_this_run": round(self.train_seconds, 2),
             "steps_per_second": (round(trained / self.train_seconds, 2)
                                  if trained else None),
             **self.result}
    write_json(os.path.join(config.model_dir, METRICS_FILE), final)
    visualization.save_png(self.image, os.path.join(config.model_dir, FIGURE_FILE))
    print(metrics_lib.format_metrics(self.result), flush=True)
    if trained:
      print(f"Trained {trained} steps in {self.train_seconds:.1f} s "
            f"({trained / self.train_seconds:.1f} steps/s; compilation included, "
            "evaluation excluded).", flush=True)
    return final


def train(config, strategy):
  """Trains (or resumes) the run `config` describes; returns the final metrics.

  Raises:
    ConfigError: `config.model_dir` holds a run with different settings.
    TrainingDivergedError: a loss became non-finite (the last good checkpoint stays).
  """
  config_lib.write_or_check_resolved(config)
  seed_everything(config)
  trainer = _Trainer(config, strategy)
  every, total = config.eval_every, config.train_steps
  replicas = strategy.num_replicas_in_sync
  print(f"Training on {replicas} replica{'s' if replicas > 1 else ''} "
        f"({type(strategy).__name__}).", flush=True)
  if trainer.start:
    print(f"Resuming {config.model_dir} from step {trainer.start}.", flush=True)
  if trainer.start >= total:
    print(f"{config.model_dir} is already trained to step {trainer.start} "
          f"(--train_steps={total}).", flush=True)
  elif trainer.start % every:
    # Resumed off the interval grid (--eval_every changed): finish this interval.
    epoch = trainer.start // every
    trainer.fit(min(every - trainer.start % every, total - trainer.start),
                epoch + 1, epoch)
  if trainer.step < total:
    trainer.fit(total - trainer.step, total // every, trainer.step // every)
  return trainer.finish()


def evaluate(config, strategy):
  """Evaluates the latest checkpoint of a trained run; returns the metrics."""
  run = Run(config, strategy)
  step = run.restore(require=True)
  result, image = run.evaluate()
  result = {"step": step, **result}
  write_json(os.path.join(config.model_dir, f"eval_metrics_step{step}.json"), result)
  visualization.save_png(image, os.path.join(config.model_dir,
                                             f"eval_samples_step{step}.png"))
  print(f"Checkpoint at step {step}:")
  print(metrics_lib.format_metrics(result), flush=True)
  return result
