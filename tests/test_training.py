"""The training loop: intervals, checkpoints, resume, determinism, divergence,
summaries, the eval mode and quality."""

import json
import os
import shutil
import re

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from shared_ring_run import base_run, copy_run
from conftest import assert_same_checkpoints, checkpoint_tensors, tiny_config
from tf_stackelberg.app import evaluation_reports
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.data import mixtures
from tf_stackelberg.training import trainer
from tf_stackelberg.training.run import Run


def _checkpoint_steps(model_dir):
  state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
  return sorted(int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths)


def _history(model_dir):
  with open(os.path.join(model_dir, "eval_history.json")) as f:
    return json.load(f)


def _read(path):
  with open(path) as f:
    return json.load(f)


# ------------------------------------------------------------------ intervals
@pytest.mark.parametrize("start,total,every,expected", [
    (0, 200, 100, [(0, 100), (100, 200)]),
    (0, 250, 100, [(0, 100), (100, 200), (200, 250)]),
    (0, 50, 100, [(0, 50)]),
    (0, 100, 100, [(0, 100)]),
    (100, 200, 100, [(100, 200)]),
    (150, 300, 100, [(150, 200), (200, 300)]),
    (150, 180, 100, [(150, 180)]),
    (199, 201, 100, [(199, 200), (200, 201)]),
    (250, 300, 100, [(250, 300)]),
    (200, 200, 100, []),
    (300, 250, 100, []),
    (0, 7, 3, [(0, 3), (3, 6), (6, 7)]),
    (0, 25000, 1000, [(i, i + 1000) for i in range(0, 25000, 1000)]),
])
def test_intervals(start, total, every, expected):
  got = trainer.intervals(start, total, every)
  assert got == expected
  # Contiguous, from start to total, each ending on the grid or at total.
  if got:
    assert got[0][0] == start and got[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(got, got[1:]))
    assert all(end % every == 0 or end == total for _, end in got)
    assert all(end - begin <= every for begin, end in got)


# ------------------------------------------------------------------ outputs
def _event_tags(directory):
  tags = {}
  for name in tf.io.gfile.listdir(directory):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
      for value in event.summary.value:
        tags.setdefault(value.tag, set()).add(event.step)
  return tags


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """`(config, final)`: an uninterrupted 300-step run (eval and checkpoints every 100)
  and what training returned; shared, so read only (tests that write use a copy)."""
  return base_run(tmp_path_factory)


@pytest.fixture(scope="module")
def whole_run(trained):
  return trained[0]


def test_writes_checkpoints_history_metrics_summaries_and_figure(trained):
  config, final = trained
  run_dir = config.model_dir
  assert final["step"] == 300 and final["trained_steps_this_run"] == 300
  assert _checkpoint_steps(run_dir) == [100, 200, 300]
  history = _history(run_dir)
  assert [h["step"] for h in history] == [100, 200, 300]
  for h in history:
    assert np.isfinite([h["g_loss"], h["d_loss"], h["d_real_loss"], h["reverse_kl"],
                        h["steps_per_second"], h["seconds"]]).all()
    assert {"modes", "high_quality", "reverse_kl", "g_loss_0", "g_loss_7"} <= set(h)
  saved = _read(os.path.join(run_dir, "metrics.json"))
  assert saved["step"] == 300 and saved["trained_steps_this_run"] == 300
  assert saved["steps_per_second"] > 0
  assert saved["mixture"] == final["mixture"]
  assert saved["mixture"]["num_samples"] == 2000
  assert len(saved["mixture"]["per_generator"]) == 8
  assert history[-1]["modes"] == saved["mixture"]["modes"]
  assert history[-1]["reverse_kl"] == pytest.approx(saved["mixture"]["reverse_kl"])
  assert saved["scatter"] == {}  # images stay out of the JSON files
  png = tf.io.decode_png(tf.io.read_file(os.path.join(run_dir, "samples.png")))
  assert png.shape[-1] == 3 and png.shape[0] >= 200
  flags_json = _read(os.path.join(run_dir, "flags.json"))
  assert flags_json["model"]["num_generators"] == 8
  assert flags_json["trainer"]["train_steps"] == 300
  # TensorBoard: the losses and the evaluators' scalars and image at every interval.
  train_tags = _event_tags(os.path.join(run_dir, "logs", "train"))
  eval_tags = _event_tags(os.path.join(run_dir, "logs", "eval"))
  for tag in ("g_loss", "d_loss", "d_real_loss", "g_loss_0", "g_loss_7",
              "steps_per_second"):
    assert train_tags[tag] == {100, 200, 300}, tag
  for tag in ("modes", "high_quality", "reverse_kl", "samples"):
    assert eval_tags[tag] == {100, 200, 300}, tag


# ------------------------------------------------------------------ resume
def test_intervals_off_the_grid_are_evaluated_checkpointed_and_resumed_exactly(
    tmp_path, whole_run, default_strategy):
  """One run taken through three commands, each ending off the grid of the next:

  * 150 steps, eval every 50, 40 steps a call: Keras runs whole blocks of
    steps_per_execution steps, and 50 is no multiple of 40, yet the run evaluates and
    checkpoints at 50, 100 and 150;
  * resumed to 230 with eval every 100: it first finishes the interval to 200, then
    evaluates and checkpoints its last step, 230, off the grid;
  * extended to 300 (--trainer.train_steps is not run-defining): the same weights and
    evaluation as the uninterrupted run (eval every 100, 50 steps a call).
  """
  config = tiny_config(tmp_path / "run", **{"trainer.train_steps": 150,
                                            "eval.every": 50,
                                            "trainer.steps_per_execution": 40,
                                            "trainer.keep_checkpoints": 10})
  final = trainer.train(config, default_strategy)
  assert final["step"] == 150 and final["trained_steps_this_run"] == 150
  assert _checkpoint_steps(config.model_dir) == [50, 100, 150]
  assert [h["step"] for h in _history(config.model_dir)] == [50, 100, 150]

  final = trainer.train(config.replace(**{"trainer.train_steps": 230,
                                          "eval.every": 100}), default_strategy)
  assert final["step"] == 230 and final["trained_steps_this_run"] == 80
  assert _checkpoint_steps(config.model_dir) == [50, 100, 150, 200, 230]
  assert [h["step"] for h in _history(config.model_dir)] == [50, 100, 150, 200, 230]
  assert _read(tmp_path / "run" / "metrics.json")["step"] == 230
  train_tags = _event_tags(str(tmp_path / "run" / "logs" / "train"))
  eval_tags = _event_tags(str(tmp_path / "run" / "logs" / "eval"))
  assert train_tags["g_loss"] == {50, 100, 150, 200, 230}
  assert eval_tags["modes"] == eval_tags["samples"] == {50, 100, 150, 200, 230}

  final = trainer.train(config.replace(**{"trainer.train_steps": 300,
                                          "eval.every": 100}), default_strategy)
  assert final["step"] == 300 and final["trained_steps_this_run"] == 70
  assert _checkpoint_steps(config.model_dir) == [50, 100, 150, 200, 230, 300]
  assert [h["step"] for h in _history(config.model_dir)] == [50, 100, 150, 200, 230,
                                                             300]
  assert _read(tmp_path / "run" / "metrics.json")["step"] == 300
  # Resumed twice, it continues exactly as the uninterrupted run.
  assert_same_checkpoints(whole_run.model_dir, config.model_dir)
  assert final["mixture"] == _read(os.path.join(whole_run.model_dir,
                                                "metrics.json"))["mixture"]


def test_finished_run_is_not_trained_again_and_evaluates(tmp_path, whole_run,
                                                        default_strategy):
  config = copy_run(whole_run, str(tmp_path / "run"))
  first = _read(os.path.join(config.model_dir, "metrics.json"))
  before = checkpoint_tensors(config.model_dir)
  history = _history(config.model_dir)
  final = trainer.train(config, default_strategy)
  assert final["trained_steps_this_run"] == 0 and final["steps_per_second"] is None
  assert final["step"] == 300
  after = checkpoint_tensors(config.model_dir)
  for name in before:
    np.testing.assert_array_equal(before[name], after[name])
  # Evaluations use a fixed seed: the restored model gives the same numbers.
  assert final["mixture"] == first["mixture"]
  assert _history(config.model_dir) == history

  # --mode=eval: the latest checkpoint, into eval_metrics_step300.json and an image.
  report = evaluation_reports.evaluate(config.replace(mode="eval"), default_strategy)
  assert report["step"] == 300 and report["mixture"] == first["mixture"]
  assert _read(os.path.join(config.model_dir, "eval_metrics_step300.json")) == (
      json.loads(json.dumps(report)))
  png = tf.io.decode_png(tf.io.read_file(os.path.join(config.model_dir,
                                                      "samples_step300.png")))
  assert png.shape[-1] == 3


def test_eval_of_all_checkpoints_gives_the_curves_training_logged(
    tmp_path, whole_run, default_strategy):
  # --eval.checkpoints=all evaluates checkpoints 100, 200 and 300 with the fixed
  # evaluation seed: the scalars training logged at those steps come back.
  model_dir = str(tmp_path / "copy")
  shutil.copytree(whole_run.model_dir, model_dir)
  config = whole_run.replace(mode="eval", model_dir=model_dir,
                             **{"eval.checkpoints": "all"})
  report = evaluation_reports.evaluate(config, default_strategy)
  assert report["step"] == 300
  curves = _read(os.path.join(model_dir, "eval_curves.json"))
  assert [c["step"] for c in curves] == [100, 200, 300]
  logged = {h["step"]: h for h in _history(model_dir)}
  for point in curves:
    for name in ("modes", "high_quality", "reverse_kl"):
      assert point[name] == pytest.approx(logged[point["step"]][name], abs=1e-9)
    assert os.path.exists(os.path.join(model_dir,
                                       f"eval_metrics_step{point['step']}.json"))


def test_eval_needs_a_checkpoint(tmp_path, default_strategy):
  config = tiny_config(tmp_path / "empty", mode="eval")
  with pytest.raises(ConfigError, match="holds no checkpoint"):
    evaluation_reports.evaluate(config, default_strategy)


def test_different_settings_in_the_same_directory_are_refused(tmp_path, whole_run,
                                                              default_strategy):
  config = copy_run(whole_run, str(tmp_path / "run"))
  model_dir = config.model_dir
  flags_before = open(os.path.join(model_dir, "flags.json")).read()
  steps_before = _checkpoint_steps(model_dir)
  weights_before = checkpoint_tensors(model_dir)
  changed = config.replace(**{"trainer.train_steps": 400,
                              "model.num_generators": 4})
  with pytest.raises(ConfigError, match="--model.num_generators: saved 8, now 4"):
    trainer.train(changed, default_strategy)
  assert open(os.path.join(model_dir, "flags.json")).read() == flags_before
  assert _checkpoint_steps(model_dir) == steps_before
  for name, value in checkpoint_tensors(model_dir).items():
    np.testing.assert_array_equal(value, weights_before[name])


# ------------------------------------------------------------------ divergence
def _poison_data_from(step_of_nan, monkeypatch):
  """Makes every real batch from `step_of_nan` on contain a NaN."""
  original = mixtures.make_dataset

  def poisoned(spec, batch_size, seed, dataset_size=8000, shuffle=False, start_step=0,
               num_steps=None):
    data = original(spec, batch_size, seed, dataset_size, shuffle, start_step, num_steps)
    steps = tf.data.Dataset.range(start_step, start_step + (num_steps or 10**9))
    return tf.data.Dataset.zip(steps, data).map(
        lambda s, x: tf.where(s >= step_of_nan, np.float32(np.nan), x))

  monkeypatch.setattr(mixtures, "make_dataset", poisoned)


def test_non_finite_loss_stops_with_status_3_and_keeps_last_good_checkpoint(
    tmp_path, monkeypatch, capsys):
  """The command line (in this process) maps `TrainingDivergedError` to exit status 3
  with the message naming the step."""
  from tf_stackelberg import main as main_lib  # pylint: disable=g-import-not-at-top
  _poison_data_from(130, monkeypatch)  # inside the compiled call of steps 100-149
  model_dir = tmp_path / "run"
  flags.FLAGS(["prog", f"--model_dir={model_dir}", "--trainer.train_steps=300",
               "--eval.every=100", "--trainer.steps_per_execution=50",
               "--eval.num_samples=2000"])
  try:
    with pytest.raises(SystemExit) as exit_info:
      main_lib.main(["prog"])
  finally:
    flags.FLAGS.unparse_flags()
  assert exit_info.value.code == 3
  err = capsys.readouterr().err
  assert re.search(r"error: training stopped: a loss became non-finite at step 130\b",
                   err), err
  assert "ckpt-100" in err  # the last good checkpoint is named
  assert _checkpoint_steps(str(model_dir)) == [100]
  for name, value in checkpoint_tensors(str(model_dir)).items():
    if value.dtype.kind == "f":
      assert np.isfinite(value).all(), name
  assert [h["step"] for h in _history(str(model_dir))] == [100]
  assert not (model_dir / "metrics.json").exists()


def test_weights_finite_catches_a_nan_weight(tmp_path, default_strategy):
  run = Run(tiny_config(tmp_path / "run"), default_strategy)
  assert run.weights_finite()
  for model in (run.gan.generator, run.gan.discriminator):
    variable = model.trainable_variables[-1]
    value = variable.numpy()
    poisoned = value.copy()
    poisoned.flat[0] = np.nan
    variable.assign(poisoned)
    assert not run.weights_finite()
    poisoned.flat[0] = np.inf
    variable.assign(poisoned)
    assert not run.weights_finite()
    variable.assign(value)
    assert run.weights_finite()


def test_non_finite_weight_stops_training_without_saving(tmp_path, monkeypatch,
                                                         default_strategy):
  """A weight that became NaN in the last step of an interval (its losses were still
  finite) is caught before the checkpoint of that interval is written."""
  original = trainer.Trainer.end_interval

  def end_interval(self, logs, seconds):
    if self.run.step == 200:
      kernel = self.run.gan.generator.trainable_variables[0]
      kernel.assign(tf.fill(kernel.shape, np.float32(np.nan)))
    return original(self, logs, seconds)

  monkeypatch.setattr(trainer.Trainer, "end_interval", end_interval)
  config = tiny_config(tmp_path / "run")
  with pytest.raises(trainer.TrainingDivergedError,
                     match=r"a step after 100 \(a weight is not finite\)") as error:
    trainer.train(config, default_strategy)
  assert "nothing was saved" in str(error.value)
  assert "ckpt-100" in str(error.value)
  assert _checkpoint_steps(config.model_dir) == [100]
  assert [h["step"] for h in _history(config.model_dir)] == [100]
  assert not (tmp_path / "run" / "metrics.json").exists()


# ------------------------------------------------------------------ quality
def test_short_run_covers_the_ring(tmp_path, whole_run, default_strategy):
  """The reference settings find at least 7 of the 8 modes in 3000 steps.

  The run goes on from a copy of `whole_run` (its first 300 steps, same settings):
  resumed runs continue exactly as uninterrupted ones (the tests above), so this is
  the 3000-step run."""
  config = copy_run(whole_run, str(tmp_path / "run"), **{
      "trainer.train_steps": 3000, "eval.every": 3000,
      "trainer.steps_per_execution": 500, "eval.num_samples": 10000,
      "eval.evaluators": ("mixture",)})
  final = trainer.train(config, default_strategy)
  assert final["step"] == 3000 and final["trained_steps_this_run"] == 2700
  mixture = final["mixture"]
  assert mixture["modes"] >= 7, mixture["mode_histogram"]
  # The generators have started to specialise: most of their mass is near a mode.
  assert mixture["high_quality"] > 0.3, mixture["high_quality"]
