"""The training loop: checkpoints, resume, determinism, divergence, summaries, quality."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config
from tf_stackelberg import config as config_lib
from tf_stackelberg import training
from tf_stackelberg.data import mixtures


def _weights(model_dir):
  """Every saved tensor of the latest checkpoint (models, BatchNorm statistics,
  optimizer slots and step counters), by checkpoint key."""
  path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  reader = tf.train.load_checkpoint(path)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")}


def _checkpoint_steps(model_dir):
  state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
  return sorted(int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths)


def test_writes_checkpoints_history_metrics_and_figure(tmp_path, default_strategy):
  config = tiny_config(tmp_path / "run", keep_checkpoints=5)
  final = training.train(config, default_strategy)
  assert final["step"] == 200
  assert _checkpoint_steps(config.model_dir) == [100, 200]
  with open(tmp_path / "run" / "eval_history.json") as f:
    history = json.load(f)
  assert [h["step"] for h in history] == [100, 200]
  for h in history:
    assert np.isfinite([h["g_loss"], h["d_loss"], h["reverse_kl"]]).all()
  with open(tmp_path / "run" / "metrics.json") as f:
    saved = json.load(f)
  assert saved["modes"] == final["modes"] and saved["num_samples"] == 2000
  assert len(saved["per_generator"]) == 8
  png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "run" / "samples.png")))
  assert png.shape[-1] == 3 and png.shape[0] >= 200
  with open(tmp_path / "run" / "flags.json") as f:
    assert json.load(f)["num_generators"] == 8


def _event_tags(directory):
  tags = {}
  for name in tf.io.gfile.listdir(directory):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
      for value in event.summary.value:
        tags.setdefault(value.tag, set()).add(event.step)
  return tags


def test_tensorboard_scalars_and_scatter_image(tmp_path, default_strategy):
  config = tiny_config(tmp_path / "run")
  training.train(config, default_strategy)
  train_tags = _event_tags(str(tmp_path / "run" / "logs" / "train"))
  eval_tags = _event_tags(str(tmp_path / "run" / "logs" / "eval"))
  for tag in ("g_loss", "d_loss", "d_real_loss", "g_loss_0", "g_loss_7",
              "steps_per_second"):
    assert train_tags[tag] == {100, 200}, tag
  for tag in ("modes", "high_quality", "reverse_kl", "samples"):
    assert eval_tags[tag] == {100, 200}, tag


def test_finished_run_is_not_trained_again(tmp_path, default_strategy):
  config = tiny_config(tmp_path / "run", train_steps=100)
  training.train(config, default_strategy)
  before = _weights(config.model_dir)
  final = training.train(config, default_strategy)
  assert final["trained_steps_this_run"] == 0
  after = _weights(config.model_dir)
  for name in before:
    np.testing.assert_array_equal(before[name], after[name])


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path, default_strategy):
  whole = tiny_config(tmp_path / "whole", train_steps=300)
  training.train(whole, default_strategy)
  part = tiny_config(tmp_path / "part", train_steps=100)
  training.train(part, default_strategy)
  # --train_steps is a runtime setting: the same run may be extended.
  final = training.train(tiny_config(tmp_path / "part", train_steps=300),
                         default_strategy)
  assert final["trained_steps_this_run"] == 200
  expected, got = _weights(whole.model_dir), _weights(part.model_dir)
  assert expected.keys() == got.keys() and len(expected) >= 20
  for name in expected:
    np.testing.assert_array_equal(expected[name], got[name], err_msg=name)


def test_resume_off_the_interval_grid(tmp_path, default_strategy):
  # A run checkpointed at step 150 (eval every 50) resumed with eval every 100 first
  # finishes the interval to 200, then continues on the new grid.
  training.train(tiny_config(tmp_path / "run", train_steps=150, eval_every=50),
                 default_strategy)
  training.train(tiny_config(tmp_path / "run", train_steps=300, keep_checkpoints=5),
                 default_strategy)
  assert _checkpoint_steps(str(tmp_path / "run"))[-3:] == [150, 200, 300]


def test_different_settings_in_the_same_directory_are_refused(tmp_path,
                                                              default_strategy):
  config = tiny_config(tmp_path / "run", train_steps=100)
  training.train(config, default_strategy)
  flags_before = (tmp_path / "run" / "flags.json").read_text()
  weights_before = _weights(config.model_dir)
  changed = tiny_config(tmp_path / "run", train_steps=200, num_generators=4)
  with pytest.raises(config_lib.ConfigError, match="--num_generators: saved 8, now 4"):
    training.train(changed, default_strategy)
  assert (tmp_path / "run" / "flags.json").read_text() == flags_before
  assert _checkpoint_steps(config.model_dir) == [100]
  for name, value in _weights(config.model_dir).items():
    np.testing.assert_array_equal(value, weights_before[name])


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


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch,
                                                              default_strategy):
  _poison_data_from(250, monkeypatch)
  config = tiny_config(tmp_path / "run", train_steps=400)
  with pytest.raises(training.TrainingDivergedError, match=r"at step 250\b"):
    training.train(config, default_strategy)
  assert _checkpoint_steps(config.model_dir) == [100, 200]
  for name, value in _weights(config.model_dir).items():
    if value.dtype.kind == "f":
      assert np.isfinite(value).all(), name
  with open(tmp_path / "run" / "eval_history.json") as f:
    assert [h["step"] for h in json.load(f)] == [100, 200]


def test_short_run_covers_the_ring(tmp_path, default_strategy):
  """The reference settings find at least 7 of the 8 modes in about a minute."""
  config = tiny_config(tmp_path / "run", train_steps=4000, eval_every=1000,
                       steps_per_execution=100, eval_samples=10000)
  final = training.train(config, default_strategy)
  assert final["modes"] >= 7, final["mode_histogram"]
  # The generators have started to specialise: most of their mass is near a mode.
  assert final["high_quality"] > 0.3, final["high_quality"]
