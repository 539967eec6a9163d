"""Runs the Stackelberg game: build, restore, fit interval by interval, evaluate, save.

A run lives in one model directory:

```none
MODEL_DIR/flags.json            resolved nested settings (a resumed run must match them)
MODEL_DIR/checkpoints/          tf.train.Checkpoint of both players, both optimizers
                                and the run-defining settings (`checkpoints.py`)
MODEL_DIR/checkpoints/damaged/  checkpoints that failed to restore, kept aside
MODEL_DIR/.lock                 held while a training runs (`common/run_lock.py`)
MODEL_DIR/logs/{train,eval}/    TensorBoard scalars and the evaluators' images
MODEL_DIR/eval_history.json     the losses and scalar metrics of every evaluation (a
                                damaged one is renamed to eval_history.json.damaged
                                on resume, and rebuilt from logs/)
MODEL_DIR/metrics.json          every evaluator's results at the end of training
MODEL_DIR/<image>.png           the evaluators' images at the end (e.g. samples.png)
```

Training advances in intervals of `--eval.every` steps, and a run always evaluates and
checkpoints at its last step too. After each interval the first non-finite loss (marked
inside the compiled step) stops the run, the weights are checked once before they are
saved, a checkpoint is written and the evaluators run. Every batch and latent is a
function of (seed, step), so a run restarted from its last checkpoint continues exactly
as if it had never stopped. Ctrl-C ends the current compiled call, checkpoints that
step and raises `Interrupted` with the command that resumes the run (docs/design.md
section 2.3).
"""

import collections
import contextlib
import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.util import event_pb2

from tf_stackelberg import visualization
from tf_stackelberg.common import files
from tf_stackelberg.common.run_lock import locks_model_dir
from tf_stackelberg.console import interrupt, text
from tf_stackelberg.console.progress import ProgressLine
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.training import checkpoints
from tf_stackelberg.training import input as input_lib
from tf_stackelberg.training import run_settings
from tf_stackelberg.training import strategy as strategy_lib
from tf_stackelberg.training.run import Run, seed_everything

HISTORY_FILE = "eval_history.json"
# Where the workers other than the chief of a multi-worker run write, under MODEL_DIR.
WORKERS_SUBDIR = "workers"
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


def logged_evaluations(model_dir, up_to_step):
  """The history entries that the TensorBoard logs of `model_dir` hold, up to
  `up_to_step`: `{step: entry}` for each step evaluated (logged under `logs/eval`),
  with its scalars and the training scalars logged at the same step (`logs/train`:
  losses, steps per second), from which `seconds` follows. TensorBoard keeps float32
  values. A step logged twice (a run resumed from an earlier checkpoint) keeps its
  last value; an event file cut short by a crash gives what it holds before the cut.
  """
  logged = {}
  for kind in ("train", "eval"):
    directory = os.path.join(model_dir, "logs", kind)
    names = (sorted(n for n in tf.io.gfile.listdir(directory)
                    if n.startswith("events.out.tfevents."))
             if tf.io.gfile.isdir(directory) else [])
    for name in names:
      try:
        for record in tf.data.TFRecordDataset(os.path.join(directory, name)):
          event = event_pb2.Event.FromString(record.numpy())
          if not event.HasField("summary") or event.step > up_to_step:
            continue
          values = logged.setdefault(event.step, {"train": {}, "eval": None})
          if kind == "eval" and values["eval"] is None:
            values["eval"] = {}
          for value in event.summary.value:
            array = tf.make_ndarray(value.tensor) if value.HasField("tensor") else None
            if array is not None and array.ndim == 0 and array.dtype.kind == "f":
              values[kind][value.tag] = float(array)
      except tf.errors.DataLossError:
        continue
  entries, previous = {}, 0
  for step in sorted(logged):
    train, scalars = logged[step]["train"], logged[step]["eval"]
    entry = {"step": step}
    if train.get("steps_per_second"):
      # Every interval, evaluated or cut short by Ctrl-C, logs its pace at its end.
      entry["seconds"] = (step - previous) / train["steps_per_second"]
      previous = step
    if scalars is not None:  # otherwise trained and checkpointed, never evaluated
      entries[step] = {**entry, **train, **scalars}
  return entries


def _is_entry(value):
  """Whether `value` reads as one evaluation of the history (a step and numbers)."""
  return (isinstance(value, dict) and isinstance(value.get("step"), int)
          and not isinstance(value.get("step"), bool))


def set_aside(path):
  """Renames the damaged file `path` to `path.damaged` (`path.damaged.2`, ... when
  that is taken: an earlier damaged copy is never replaced); returns the new name."""
  target, suffix = f"{path}.damaged", 1
  while tf.io.gfile.exists(target):
    suffix += 1
    target = f"{path}.damaged.{suffix}"
  with files.storage_errors(target):
    tf.io.gfile.rename(path, target)
  return target


def _load_history(path, up_to_step):
  """The evaluations in the history file up to `up_to_step`.

  A damaged file (not JSON, not a list of evaluations, or some entries that are not
  evaluations) would stop every resume of the run, so it is renamed aside (kept, one
  line says where) and the history is rebuilt: from the entries of a list that are
  evaluations, and for the other steps from the run's TensorBoard logs.
  """
  if not tf.io.gfile.exists(path):
    return []
  try:
    history = files.read_json(path)
    reason = None
  except ValueError as e:  # JSONDecodeError, or bytes that are no UTF-8 text
    cause = e.__cause__ if isinstance(e.__cause__, json.JSONDecodeError) else None
    history, reason = [], "not valid JSON" + (
        f": {cause.msg} at line {cause.lineno} column {cause.colno}" if cause else "")
  if reason is None and not isinstance(history, list):
    history, reason = [], f"a JSON {type(history).__name__}, not a list of evaluations"
  # Evaluations after the restored checkpoint belong to a run that did not survive.
  kept = [h for h in history if _is_entry(h) and h["step"] <= up_to_step]
  if reason is None:
    bad = sum(1 for h in history if not _is_entry(h))
    if not bad:
      return kept
    reason = f"{bad} of its {len(history)} entries are not evaluations"
  moved = set_aside(path)
  by_step = logged_evaluations(os.path.dirname(path), up_to_step)
  rebuilt = len(set(by_step) - {h["step"] for h in kept})
  by_step.update({h["step"]: h for h in kept})
  done = []
  if kept:
    done.append(f"kept the {len(kept)} evaluations that read")
  if rebuilt:
    done.append(f"rebuilt {rebuilt} {'more ' if kept else ''}from the TensorBoard "
                "logs")
  print(f"{path} is damaged ({reason}): moved it to {moved} and "
        f"{' and '.join(done) or 'started a new evaluation history'}.", flush=True)
  history = [by_step[step] for step in sorted(by_step)]
  # Written now: a run with nothing left to train evaluates no more intervals.
  files.write_json(path, history)
  return history


def write_scalars(writer, step, values):
  """Writes `{name: value}` as TensorBoard scalars of `step` with `writer`."""
  with writer.as_default(step=step):
    for name, value in values.items():
      tf.summary.scalar(name, value)


class _Console(keras.callbacks.Callback):
  """Keras callback of a `Trainer`: the live progress line, the stop request (checked
  after every compiled call) and the end of each evaluation interval."""

  def __init__(self, trainer):
    super().__init__()
    self._trainer = trainer
    self._began = None

  def on_epoch_begin(self, epoch, logs=None):
    self._began = time.perf_counter()

  def on_train_batch_end(self, batch, logs=None):
    trainer = self._trainer
    if trainer.stop.requested:
      self.model.stop_training = True
      return
    # Keras passes the index of the last step of the call; the losses are read (a
    # device-to-host copy) only when the line is redrawn.
    trainer.progress.update(lambda: trainer.progress_text(batch + 1, _floats(logs)))

  def on_epoch_end(self, epoch, logs=None):
    self._trainer.end_interval(_floats(logs), time.perf_counter() - self._began)


def _floats(logs):
  """The logs as Python floats (a multi-worker step returns shape-[1] values,
  `StackelbergGAN.train_step`)."""
  return {name: float(np.mean(value)) for name, value in (logs or {}).items()}


# The losses shown on the console (every loss is in TensorBoard and the history).
MAIN_LOSSES = (("d", "d_loss"), ("g", "g_loss"))


class Trainer:
  """The state of one `train` call: the run, writers, history, console and the last
  results."""

  def __init__(self, config, strategy, stop=None, progress=None, restore_dir=None):
    self.run = Run(config, strategy, restore_dir=restore_dir)
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
    self.stop = stop or interrupt.StopRequest()
    self.progress = progress or ProgressLine()
    self._wall_start = None
    self._interval_start = self.start

  @property
  def total(self):
    return self.config.trainer.train_steps

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
    data = input_lib.training_batches(self.run.strategy, self.run.data,
                                      config.game.batch_size, config.seed,
                                      start_step=self.step, num_steps=num_steps)
    if self._wall_start is None:
      self._wall_start = time.perf_counter()
    self._interval_start = self.step
    # Under several replicas `data` is already split into per-replica shares.
    self.run.gan.fit(data, epochs=first_interval + num_intervals,
                     initial_epoch=first_interval, steps_per_epoch=interval,
                     callbacks=[_Console(self)], shuffle=False, verbose=0)

  def eta_seconds(self, step):
    """Wall-clock seconds left for the whole run (evaluations included), from the
    pace of this invocation so far; None before the first step."""
    done = step - self.start
    if done <= 0 or self._wall_start is None:
      return None
    return (self.total - step) * (time.perf_counter() - self._wall_start) / done

  def _loss_fields(self, logs):
    values = [f"{label} {text.format_number(logs[name])}"
              for label, name in MAIN_LOSSES if name in logs]
    return " ".join(values)

  def progress_text(self, steps_in_interval, logs):
    """The live line: step, a bar over the interval, the main losses and the ETA."""
    step = self._interval_start + steps_in_interval
    interval_end = min(self.total, (self._interval_start // self.config.eval.every + 1)
                       * self.config.eval.every)
    length = max(1, interval_end - self._interval_start)
    return text.fit_fields(
        [f"step {step}/{self.total}", text.bar(steps_in_interval / length, 22),
         f"ETA {text.format_duration(self.eta_seconds(step))}",
         self._loss_fields(logs or {})], self.progress.width)

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
    """Check, checkpoint, evaluate and log (in this order: never save a NaN model).

    After a stop request (Ctrl-C) the interval is cut short: the checkpoint is
    written, and the evaluation is left to the resumed run.
    """
    run = self.run
    self.progress.clear()
    self._check_finite()
    steps = run.step - self.step
    if steps == 0:
      return
    self.step = run.step
    self.train_seconds += seconds
    run.manager.save(checkpoint_number=self.step)
    losses = {name: float(value) for name, value in logs.items()}
    losses["steps_per_second"] = steps / seconds
    write_scalars(self.train_writer, self.step, losses)
    if self.stop.requested:
      return
    self.results = results = run.evaluate()
    scalars = evaluation.scalars(run.evaluators, results)
    write_scalars(self.eval_writer, self.step, scalars)
    with self.eval_writer.as_default(step=self.step):
      for name, image in evaluation.images(run.evaluators, results).items():
        tf.summary.image(name, visualization.image_summary_tensor(image))
    self.history.append({"step": self.step, "seconds": seconds, **losses, **scalars})
    files.write_json(self.history_path, self.history)
    self.progress.print(text.fit_groups(
        [[f"step {self.step}/{self.total}", f"{steps / seconds:.0f} it/s",
          f"ETA {text.format_duration(self.eta_seconds(self.step))}"],
         [self._loss_fields(losses)], evaluation.summary_fields(run.evaluators, results)],
        self.progress.width))
    self._interval_start = self.step

  def interrupted(self):
    """The `Interrupted` error after a stop request: where the run stopped and the
    command that resumes it, wrapped to the terminal width."""
    self.train_writer.flush()
    self.eval_writer.flush()
    saved = self.run.manager.latest_checkpoint or "none yet"
    # The interpreter that runs now: a bare `python` may be another one, or none
    # outside an activated virtualenv.
    command = text.shell_lines([sys.executable, "-m", "tf_stackelberg.main"] +
                               sys.argv[1:], self.progress.width)
    return interrupt.Interrupted(
        f"Stopped at step {self.step} on request.\nCheckpoint: {saved}\n"
        f"The same command resumes the run:\n{command}", self.stop.signum)

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
    evaluation.save_images(run.evaluators, self.results, self.config.model_dir)
    print(evaluation.format_results(run.evaluators, self.results), flush=True)
    if trained:
      print(f"Trained {trained} steps in {text.format_duration(self.train_seconds)} "
            f"({trained / self.train_seconds:.1f} steps/s; compilation included, "
            "evaluation excluded).", flush=True)
    task = strategy_lib.task_name(run.strategy)
    if task:  # every worker of a cluster must end with the same model
      print(f"Weights digest of {task}: {run.weights_digest()}", flush=True)
    return final


def train(config, strategy):
  """Trains (or resumes) the run `config` describes; returns the final metrics.

  Under a multi-worker strategy every worker calls this. The chief trains in
  `config.model_dir`; every other worker trains in lockstep with it, restores the
  chief's checkpoints and writes its own files (checkpoints included: saving is a
  collective step) to `MODEL_DIR/workers/TASK`, which it removes when it ends
  (docs/design.md section 12.3).

  Raises:
    ConfigError: `config.model_dir` holds a run with different settings, or no
      checkpoint of it restores.
    RunLockedError: another process trains in `config.model_dir`.
    TrainingDivergedError: a loss became non-finite (the last good checkpoint stays).
    Interrupted: Ctrl-C stopped the run (its checkpoint is written).
  """
  if strategy_lib.is_chief(strategy):
    return _train(config, strategy)
  worker_dir = os.path.join(config.model_dir, WORKERS_SUBDIR,
                            strategy_lib.task_name(strategy) or "worker")
  try:
    return _train(config.replace(model_dir=worker_dir), strategy,
                  restore_dir=checkpoints.directory_of(config.model_dir))
  finally:
    shutil.rmtree(worker_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # the last worker out removes the parent
      os.rmdir(os.path.dirname(worker_dir))


@locks_model_dir
def _train(config, strategy, restore_dir=None):
  """`train` in `config.model_dir`, restoring from `restore_dir` (default: the run's
  own checkpoints)."""
  write_flags = run_settings.prepare_training(config)
  seed_everything(config)
  trainer = Trainer(config, strategy, restore_dir=restore_dir)
  if write_flags:
    # Written once the model was built from the settings, so that settings the
    # builders refuse never lock the directory.
    write_flags()
  total = config.trainer.train_steps
  replicas = strategy.num_replicas_in_sync
  print(f"Training on {_placement(strategy)}.", flush=True)
  if trainer.start:
    print(f"Resuming {config.model_dir} from step {trainer.start}.", flush=True)
  if trainer.start >= total:
    print(f"{config.model_dir} is already trained to step {trainer.start} "
          f"(--trainer.train_steps={total}).", flush=True)
  return _fit_all(trainer)


def _placement(strategy):
  """Where training runs, in words: '1 device (CPU)', '2 replicas (MirroredStrategy:
  2 GPUs)'."""
  replicas = strategy.num_replicas_in_sync
  try:
    devices = strategy.extended.worker_devices
  except RuntimeError:  # the default strategy: TensorFlow's own device placement
    kinds = [d.device_type for d in tf.config.list_logical_devices()]
    kind = "GPU" if "GPU" in kinds else "TPU" if "TPU" in kinds else "CPU"
    return f"1 device ({kind}, no distribution strategy)"
  kinds = collections.Counter(tf.DeviceSpec.from_string(d).device_type or "CPU"
                              for d in devices)
  counted = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in kinds.items())
  return (f"{replicas} replica{'s' if replicas > 1 else ''} "
          f"({type(strategy).__name__}: {counted})")


def _fit_all(trainer):
  """Trains `trainer` to `--trainer.train_steps`; returns the final metrics.

  Raises:
    Interrupted: after Ctrl-C, once the checkpoint of the current step is written.
  """
  every = trainer.config.eval.every
  with trainer.stop:
    # Consecutive intervals of equal length share one `fit` call.
    pending = intervals(trainer.start, trainer.total, every)
    while pending and not trainer.stop.requested:
      length = pending[0][1] - pending[0][0]
      count = next((i for i, (a, b) in enumerate(pending) if b - a != length),
                   len(pending))
      trainer.fit(length * count, count, pending[0][0] // every)
      pending = pending[count:]
    if trainer.stop.requested:
      trainer.progress.clear()
      raise trainer.interrupted()
  return trainer.finish()
