"""Runs the Stackelberg game: build, restore, fit interval by interval, evaluate, save.

A run lives in one model directory:

```none
MODEL_DIR/flags.json            resolved nested settings (a resumed run must match them)
MODEL_DIR/checkpoints/          tf.train.Checkpoint of both players and optimizers
MODEL_DIR/logs/{train,eval}/    TensorBoard scalars and the evaluators' images
MODEL_DIR/eval_history.json     the losses and scalar metrics of every evaluation
MODEL_DIR/metrics.json          every evaluator's results at the end of training
MODEL_DIR/<image>.png           the evaluators' images at the end (e.g. samples.png)
```

Training advances in intervals of `--eval.every` steps, and a run always evaluates and
checkpoints at its last step too. After each interval the first non-finite loss (marked
inside the compiled step) stops the run, the weights are checked once before they are
saved, a checkpoint is written and the evaluators run. Every batch and latent is a
function of (seed, step), so a run restarted from its last checkpoint continues exactly
as if it had never stopped.
"""

import math
import os
import sys
import time

import keras
import tensorflow as tf

from tf_stackelberg import visualization
from tf_stackelberg.common import files
from tf_stackelberg.common.run_lock import locks_model_dir
from tf_stackelberg.config import resolved
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.training.run import Run, seed_everything

HISTORY_FILE = "eval_history.json"
METRICS_FILE = "metrics.json"


class TrainingDivergedError(RuntimeError):
  """A loss or weight became NaN or infinite; the message names the step."""


def intervals(start, total, every):
  """The (first step, last step) of each interval from `start` to `total`.

  Intervals end at the multiples of `every` and at `total`.
  """
  bounds = list(range((start // every + 1) * every, total, every)) + [total]
  out, begin = [], start
  for end in bounds:
    if end > begin:
      out.append((begin, end))
      begin = end
  return out


def _load_history(path, up_to_step):
  if not tf.io.gfile.exists(path):
    return []
  # Evaluations after the restored checkpoint belong to a run that did not survive.
  return [h for h in files.read_json(path) if h["step"] <= up_to_step]


def _summarize(writer, step, values):
  with writer.as_default(step=step):
    for name, value in values.items():
      tf.summary.scalar(name, value)


def _progress_verbosity():
  # A live progress bar on a terminal, one line per interval in logs.
  return 1 if sys.stdout.isatty() else 2


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


class Trainer:
  """The state of one `train` call: the run, writers, history and the last results."""

  def __init__(self, config, strategy):
    self.run = Run(config, strategy)
    self.config = self.run.config  # as the run adjusted it to the strategy
    self.start = self.run.restore()
    self.step = self.start
    self.history_path = os.path.join(config.model_dir, HISTORY_FILE)
    self.history = _load_history(self.history_path, self.start)
    logs_dir = os.path.join(config.model_dir, "logs")
    self.train_writer = tf.summary.create_file_writer(os.path.join(logs_dir, "train"))
    self.eval_writer = tf.summary.create_file_writer(os.path.join(logs_dir, "eval"))
    self.train_seconds = 0.0
    self.results = None

  def _set_steps_per_execution(self, interval):
    """Keras runs whole blocks of `steps_per_execution` steps: an interval that is no
    multiple of `--trainer.steps_per_execution` runs in blocks of their gcd (the step
    function is traced again for it)."""
    gan = self.run.gan
    steps = math.gcd(interval, self.config.trainer.steps_per_execution)
    if gan.steps_per_execution != steps:
      gan.steps_per_execution = steps
      gan.make_train_function(force=True)

  def fit(self, num_steps, num_intervals, first_interval):
    """`num_intervals` intervals of `num_steps / num_intervals` steps each."""
    config = self.config
    interval = num_steps // num_intervals
    self._set_steps_per_execution(interval)
    data = self.run.data.batches(config.game.batch_size, config.seed,
                                 start_step=self.step, num_steps=num_steps)
    # Keras splits each global batch across the replicas of the strategy scope.
    self.run.gan.fit(data, epochs=first_interval + num_intervals,
                     initial_epoch=first_interval, steps_per_epoch=interval,
                     callbacks=[_IntervalEnd(self.end_interval)],
                     shuffle=False, verbose=_progress_verbosity())

  def _check_finite(self):
    run = self.run
    bad_step = run.gan.first_nonfinite_step()
    if bad_step is None and run.weights_finite():
      return
    where = (f"step {bad_step}" if bad_step is not None
             else f"a step after {self.step} (a weight is not finite)")
    last = run.manager.latest_checkpoint or "none (no checkpoint was written yet)"
    raise TrainingDivergedError(
        f"training stopped: a loss became non-finite at {where}; nothing was saved "
        f"after it, and the last good checkpoint is kept: {last}")

  def end_interval(self, logs, seconds):
    """Check, checkpoint, evaluate and log (in this order: never save a NaN model)."""
    run, config = self.run, self.config
    self._check_finite()
    steps = run.step - self.step
    self.step = run.step
    self.train_seconds += seconds
    run.manager.save(checkpoint_number=self.step)
    losses = {name: float(value) for name, value in logs.items()}
    losses["steps_per_second"] = steps / seconds
    _summarize(self.train_writer, self.step, losses)

    self.results = results = run.evaluate()
    scalars = evaluation.scalars(run.evaluators, results)
    _summarize(self.eval_writer, self.step, scalars)
    with self.eval_writer.as_default(step=self.step):
      for name, image in evaluation.images(run.evaluators, results).items():
        tf.summary.image(name, visualization.image_summary_tensor(image))
    self.history.append({"step": self.step, "seconds": seconds, **losses, **scalars})
    files.write_json(self.history_path, self.history)
    summary = evaluation.summary_line(run.evaluators, results)
    print(f"step {self.step}/{config.trainer.train_steps}: {summary} "
          f"({steps / seconds:.1f} steps/s)", flush=True)

  def finish(self):
    """Final metrics, images and summary; returns the metrics."""
    run = self.run
    if self.results is None:  # nothing left to train: evaluate the restored model
      self.results = run.evaluate()
    self.train_writer.flush()
    self.eval_writer.flush()
    trained = self.step - self.start
    final = {"step": self.step, "trained_steps_this_run": trained,
             "train_seconds_this_run": round(self.train_seconds, 2),
             "steps_per_second": (round(trained / self.train_seconds, 2)
                                  if trained else None),
             **evaluation.without_images(run.evaluators, self.results)}
    files.write_json(os.path.join(self.config.model_dir, METRICS_FILE), final)
    save_images(run, self.results, self.config.model_dir)
    print(evaluation.format_results(run.evaluators, self.results), flush=True)
    if trained:
      print(f"Trained {trained} steps in {self.train_seconds:.1f} s "
            f"({trained / self.train_seconds:.1f} steps/s; compilation included, "
            "evaluation excluded).", flush=True)
    return final


def save_images(run, results, directory, suffix=""):
  """Writes each evaluator image as `directory/NAME{suffix}.png`."""
  for name, image in evaluation.images(run.evaluators, results).items():
    visualization.save_png(image, os.path.join(directory, f"{name}{suffix}.png"))


@locks_model_dir
def train(config, strategy):
  """Trains (or resumes) the run `config` describes; returns the final metrics.

  Raises:
    ConfigError: `config.model_dir` holds a run with different settings, or no
      checkpoint of it restores.
    RunLockedError: another process trains in `config.model_dir`.
    TrainingDivergedError: a loss became non-finite (the last good checkpoint stays).
  """
  write_flags = resolved.prepare_training(config)
  seed_everything(config)
  trainer = Trainer(config, strategy)
  if write_flags:
    # Written once the model was built from the settings, so that settings the
    # builders refuse never lock the directory.
    write_flags()
  every, total = config.eval.every, config.trainer.train_steps
  replicas = strategy.num_replicas_in_sync
  print(f"Training on {replicas} replica{'s' if replicas > 1 else ''} "
        f"({type(strategy).__name__}).", flush=True)
  if trainer.start:
    print(f"Resuming {config.model_dir} from step {trainer.start}.", flush=True)
  if trainer.start >= total:
    print(f"{config.model_dir} is already trained to step {trainer.start} "
          f"(--trainer.train_steps={total}).", flush=True)
  # Consecutive intervals of equal length share one `fit` call.
  pending = intervals(trainer.start, total, every)
  while pending:
    length = pending[0][1] - pending[0][0]
    count = next((i for i, (a, b) in enumerate(pending) if b - a != length),
                 len(pending))
    trainer.fit(length * count, count, pending[0][0] // every)
    pending = pending[count:]
  return trainer.finish()


def evaluate(config, strategy):
  """Evaluates the latest checkpoint of a trained run; returns the metrics."""
  run = Run(config, strategy)
  step = run.restore(require=True, repair=False)  # evaluation only reads the run
  results = run.evaluate()
  report = {"step": step, **evaluation.without_images(run.evaluators, results)}
  files.write_json(os.path.join(config.model_dir, f"eval_metrics_step{step}.json"),
                   report)
  save_images(run, results, config.model_dir, suffix=f"_step{step}")
  print(f"Checkpoint at step {step}:")
  print(evaluation.format_results(run.evaluators, results), flush=True)
  return report
