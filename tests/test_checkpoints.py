"""Damaged and missing run files: checkpoints, their state file and flags.json.

Each case starts from a copy of one trained run (checkpoints at 100, 200 and 300) and
checks that nothing that was on disk is lost.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import shared_ring_run as shared
from conftest import (assert_same_tensors, file_digests, run_main, saved_tensors,
                      tiny_config)
from tf_stackelberg.app import evaluation_reports
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.training import checkpoints, run_settings, trainer
from tf_stackelberg.training.run import Run

SETTINGS = shared.BASE_SETTINGS
# Keys of a checkpoint that are no variables of the model.
_NOT_WEIGHTS = ("_CHECKPOINTABLE_OBJECT_GRAPH",
                "save_counter/.ATTRIBUTES/VARIABLE_VALUE", checkpoints.SETTINGS_KEY)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
  """A 300-step run, evaluated and checkpointed every 100 steps, shared with other
  test files: read only, each case works on a copy (`_copy`)."""
  return shared.base_run(tmp_path_factory)[0]


def _copy(base_run, tmp_path, **overrides):
  """A copy of the base run's directory and its config."""
  model_dir = tmp_path / "run"
  shutil.copytree(base_run.model_dir, model_dir)
  return tiny_config(model_dir, **{**SETTINGS, **overrides})


def _ckpt(config, step):
  return os.path.join(config.model_dir, "checkpoints", f"ckpt-{step}")


def _data(prefix):
  return f"{prefix}.data-00000-of-00001"


def _flip(path, offset):
  with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ 0x01]))


def _int64_offset(prefix, value):
  """Where the data file holds an int64 tensor of `value` (its bytes occur nowhere
  else: the settings are text, and no weight is exactly a denormal next to a 0)."""
  with open(_data(prefix), "rb") as f:
    data = f.read()
  return data.index(np.int64(value).tobytes())


def _step_counter_offset(prefix):
  """Where the data file holds an optimizer's step counter."""
  return _int64_offset(prefix, checkpoints.number(prefix))


def _save_counter_offset(prefix):
  """Where the data file holds the checkpoint's own save counter."""
  reader = tf.train.load_checkpoint(prefix)
  return _int64_offset(prefix, reader.get_tensor(
      "save_counter/.ATTRIBUTES/VARIABLE_VALUE"))


def _truncate(path, fraction=0.5):
  os.truncate(path, int(os.path.getsize(path) * fraction))


# name -> (damage of checkpoint prefix, the reason printed)
DAMAGES = {
    "truncated data": (lambda p: _truncate(_data(p)),
                       "data file truncated (read less bytes than requested)"),
    "flipped data byte": (lambda p: _flip(_data(p), os.path.getsize(_data(p)) // 2),
                          "data file corrupted (checksum mismatch)"),
    "flipped step counter": (lambda p: _flip(_data(p), _step_counter_offset(p)),
                             "data file corrupted (checksum mismatch)"),
    "flipped save counter": (lambda p: _flip(_data(p), _save_counter_offset(p)),
                             "data file corrupted (checksum mismatch)"),
    "empty data": (lambda p: _truncate(_data(p), 0),
                   "data file truncated (read less bytes than requested)"),
    "truncated index": (lambda p: _truncate(f"{p}.index"),
                        "index file damaged (not an sstable (bad magic number))"),
    "flipped index byte": (lambda p: _flip(f"{p}.index", 100),
                           "index file damaged (block checksum mismatch)"),
    "deleted index": (lambda p: os.remove(f"{p}.index"), "ckpt-300.index is missing"),
    "deleted data": (lambda p: os.remove(_data(p)), "its data file is missing"),
}


def _weights(run):
  """Every variable of the run (models and optimizers) by checkpoint key, as written
  by a checkpoint of the run now."""
  path = tf.train.Checkpoint(**run.trackables).write(
      os.path.join(run.config.model_dir, "..", "now", "ckpt"))
  return saved_tensors(path, _NOT_WEIGHTS)


def _saved(prefix):
  return saved_tensors(prefix, _NOT_WEIGHTS)


def _state(config):
  state = tf.train.get_checkpoint_state(os.path.join(config.model_dir, "checkpoints"))
  return [checkpoints.number(p) for p in state.all_model_checkpoint_paths]


# ------------------------------------------------------------------ damaged checkpoint
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_eval_skips_a_damaged_newest_checkpoint_and_moves_nothing(
    base_run, tmp_path, capsys, default_strategy, damage):
  config = _copy(base_run, tmp_path, mode="eval")
  damage_fn, reason = DAMAGES[damage]
  damage_fn(_ckpt(config, 300))
  before = file_digests(config.model_dir)
  run = Run(config, default_strategy)
  assert run.restore(require=True) == 200
  assert capsys.readouterr().out == (
      f"Skipped checkpoint {_ckpt(config, 300)}: {reason}; restored ckpt-200 "
      "(step 200).\n")
  assert_same_tensors(_saved(_ckpt(base_run, 200)), _weights(run))
  shutil.rmtree(os.path.join(config.model_dir, "..", "now"))
  assert file_digests(config.model_dir) == before  # read only


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_train_moves_a_damaged_newest_checkpoint_aside(base_run, tmp_path, capsys,
                                                       default_strategy, damage):
  config = _copy(base_run, tmp_path)
  damage_fn, reason = DAMAGES[damage]
  damage_fn(_ckpt(config, 300))
  checkpoint_dir = os.path.join(config.model_dir, "checkpoints")
  damaged = {name: digest for name, digest in file_digests(checkpoint_dir).items()
             if name.startswith("ckpt-300.")}
  run = Run(config, default_strategy)
  assert run.restore() == 200
  assert capsys.readouterr().out == (
      f"Skipped checkpoint {_ckpt(config, 300)}: {reason}; restored ckpt-200 "
      f"(step 200); moved its files to {checkpoint_dir}/damaged/.\n")
  assert_same_tensors(_saved(_ckpt(base_run, 200)), _weights(run))
  # Kept, byte for byte, where a new ckpt-300 cannot collide with them.
  assert file_digests(os.path.join(checkpoint_dir, "damaged")) == damaged
  assert not tf.io.gfile.glob(_ckpt(config, 300) + ".*")
  assert _state(config) == [100, 200]
  assert run.manager.latest_checkpoint == _ckpt(config, 200)


def test_a_partly_applied_failed_restore_is_overwritten_and_training_goes_on_exactly(
    base_run, tmp_path, monkeypatch, capsys, default_strategy):
  """TF 2.21 restores the save counter of a checkpoint last, in an op of its own: a
  damaged one fails the restore after the weights of step 300 were assigned. The
  older checkpoint then restores every variable again."""
  config = _copy(base_run, tmp_path)
  DAMAGES["flipped save counter"][0](_ckpt(config, 300))
  failed = []
  original = Run._restore_from

  def restore_from(self, prefix):
    try:
      original(self, prefix)
    except tf.errors.OpError:
      failed.append(_weights(self))
      raise

  monkeypatch.setattr(Run, "_restore_from", restore_from)
  run = Run(config, default_strategy)
  assert run.restore() == 200
  at_300, at_200 = _saved(_ckpt(base_run, 300)), _saved(_ckpt(base_run, 200))
  assert len(failed) == 1
  partly = [n for n in at_300 if np.array_equal(failed[0][n], at_300[n])
            and not np.array_equal(at_300[n], at_200[n])]
  assert partly, "the failed restore assigned nothing (the case is not exercised)"
  assert_same_tensors(at_200, _weights(run))
  monkeypatch.undo()
  capsys.readouterr()

  # The resumed run retrains 200-300 and writes the step-300 checkpoint again.
  final = trainer.train(config, default_strategy)
  assert final["trained_steps_this_run"] == 100
  assert "Resuming" in capsys.readouterr().out
  assert_same_tensors(at_300, _saved(_ckpt(config, 300)))
  assert _state(config) == [100, 200, 300]
  damaged = os.path.join(config.model_dir, "checkpoints", "damaged")
  assert sorted(os.listdir(damaged)) == ["ckpt-300.data-00000-of-00001",
                                         "ckpt-300.index"]


def test_damaged_twice_the_earlier_damaged_files_stay(base_run, tmp_path):
  config = _copy(base_run, tmp_path)
  prefix = _ckpt(config, 300)
  first = checkpoints.move_aside(prefix)
  shutil.copy(_data(_ckpt(config, 200)), _data(prefix))
  shutil.copy(_ckpt(config, 200) + ".index", prefix + ".index")
  second = checkpoints.move_aside(prefix)
  assert os.path.basename(first) == "ckpt-300"
  assert os.path.basename(second) == "ckpt-300_2"
  damaged = os.path.join(config.model_dir, "checkpoints", "damaged")
  assert sorted(os.listdir(damaged)) == [
      "ckpt-300.data-00000-of-00001", "ckpt-300.index",
      "ckpt-300_2.data-00000-of-00001", "ckpt-300_2.index"]


def test_when_no_checkpoint_restores_nothing_is_moved(base_run, tmp_path,
                                                      default_strategy):
  config = _copy(base_run, tmp_path)
  for step in (100, 200, 300):
    _truncate(_data(_ckpt(config, step)))
  os.remove(_ckpt(config, 100) + ".index")
  before = file_digests(config.model_dir)
  with pytest.raises(ConfigError) as error:
    trainer.train(config.replace(**{"trainer.train_steps": 400}), default_strategy)
  checkpoint_dir = os.path.join(config.model_dir, "checkpoints")
  assert str(error.value) == (
      f"no checkpoint in {checkpoint_dir} restores (ckpt-300: data file truncated "
      "(read less bytes than requested); ckpt-200: data file truncated (read less "
      "bytes than requested); ckpt-100: ckpt-100.index is missing); nothing was moved "
      "or changed. The files are incomplete or changed: copy them again from where the "
      "run was made, or restore them from a backup")
  assert "move" not in str(error.value).split("nothing was moved")[1]
  assert file_digests(config.model_dir) == before
  with pytest.raises(ConfigError, match="^no checkpoint in .* restores"):
    evaluation_reports.evaluate(config.replace(mode="eval"), default_strategy)
  assert file_digests(config.model_dir) == before


def test_eval_on_the_command_line_falls_back(base_run, tmp_path, capsys):
  config = _copy(base_run, tmp_path)
  _truncate(_data(_ckpt(config, 300)))
  assert run_main(f"--model_dir={config.model_dir}", "--mode=eval",
                  "--eval.num_samples=500") == 0
  out = capsys.readouterr().out
  assert f"Skipped checkpoint {_ckpt(config, 300)}: data file truncated" in out
  assert "Checkpoint at step 200:" in out
  assert os.path.exists(os.path.join(config.model_dir, "eval_metrics_step200.json"))


# ------------------------------------------------------------------ state file
def test_without_the_state_file_checkpoints_are_found_on_disk(
    base_run, tmp_path, capsys, default_strategy):
  config = _copy(base_run, tmp_path)
  checkpoint_dir = os.path.join(config.model_dir, "checkpoints")
  os.remove(os.path.join(checkpoint_dir, "checkpoint"))
  kept = file_digests(checkpoint_dir)

  # Read only: found, restored, nothing written.
  run = Run(config.replace(mode="eval"), default_strategy)
  assert run.restore(require=True) == 300
  assert capsys.readouterr().out == (
      f"No checkpoint state file in {checkpoint_dir} (or it lists none): found "
      "ckpt-100, ckpt-200, ckpt-300 on disk; restored ckpt-300 (step 300).\n")
  assert not os.path.exists(os.path.join(checkpoint_dir, "checkpoint"))

  # Training resumes from the newest one and rebuilds the state file.
  final = trainer.train(config.replace(**{"trainer.train_steps": 400}),
                        default_strategy)
  out = capsys.readouterr().out
  assert (f"No checkpoint state file in {checkpoint_dir} (or it lists none): found "
          "ckpt-100, ckpt-200, ckpt-300 on disk; restored ckpt-300 (step 300) and "
          "rebuilt the state file.\n") in out
  assert f"Resuming {config.model_dir} from step 300." in out
  assert final["step"] == 400 and final["trained_steps_this_run"] == 100
  assert _state(config) == [100, 200, 300, 400]
  now = file_digests(checkpoint_dir)
  assert all(now[name] == digest for name, digest in kept.items())  # none overwritten


@pytest.mark.parametrize("content", ["", "garbage {{{"])
def test_an_empty_or_unreadable_state_file_is_rebuilt(base_run, tmp_path, capsys,
                                                      default_strategy, content):
  config = _copy(base_run, tmp_path)
  with open(os.path.join(config.model_dir, "checkpoints", "checkpoint"), "w") as f:
    f.write(content)
  run = Run(config, default_strategy)
  assert run.restore() == 300
  assert "rebuilt the state file" in capsys.readouterr().out
  assert _state(config) == [100, 200, 300]
  assert run.manager.latest_checkpoint == _ckpt(config, 300)


def test_a_rebuilt_state_file_lists_at_most_keep_checkpoints(base_run, tmp_path,
                                                             default_strategy):
  """The older checkpoints stay on disk, out of the manager's deletions."""
  config = _copy(base_run, tmp_path, **{"trainer.keep_checkpoints": 2})
  os.remove(os.path.join(config.model_dir, "checkpoints", "checkpoint"))
  Run(config, default_strategy).restore()
  assert _state(config) == [200, 300]
  assert os.path.exists(_ckpt(config, 100) + ".index")


# ------------------------------------------------------------------ stored settings
def test_every_checkpoint_stores_the_run_settings(base_run):
  for step in (100, 200, 300):
    assert checkpoints.read_settings(_ckpt(base_run, step)) == json.loads(
        json.dumps(base_run.run_settings()))


def test_a_checkpoint_of_other_settings_is_refused(base_run, tmp_path,
                                                   default_strategy):
  # Same shapes, so only the stored settings tell the checkpoints apart.
  config = _copy(base_run, tmp_path, **{"game.learning_rate": 1e-3})
  before = file_digests(config.model_dir)
  with pytest.raises(ConfigError) as error:
    Run(config, default_strategy).restore()
  assert str(error.value) == (
      f"{config.model_dir} holds a run with different settings (see checkpoint "
      f"{_ckpt(config, 300)}); use another --model_dir or the same flags:\n"
      "  --game.learning_rate: saved 0.0002, now 0.001")
  assert file_digests(config.model_dir) == before


def test_checkpoints_without_stored_settings_still_restore(tmp_path, default_strategy):
  config = tiny_config(tmp_path / "run")
  run = Run(config, default_strategy)
  weights = _weights(run)
  # The layout before the settings were stored: the four objects only.
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(**run.trackables),
                                       os.path.join(config.model_dir, "checkpoints"), 3)
  manager.save(checkpoint_number=0)
  assert checkpoints.read_settings(manager.latest_checkpoint) is None
  restored = Run(config, default_strategy)
  assert restored.restore(require=True) == 0
  assert_same_tensors(weights, _weights(restored))
  # A model the old checkpoint does not fit is refused clearly.
  other = Run(config.replace(**{"model.num_generators": 4}), default_strategy)
  with pytest.raises(ConfigError, match="does not fit the model of these settings"):
    other.restore()


# ------------------------------------------------------------------ flags.json
def test_missing_flags_json_is_recreated_from_the_checkpoints(base_run, tmp_path,
                                                              capsys):
  config = _copy(base_run, tmp_path)
  path = os.path.join(config.model_dir, "flags.json")
  os.remove(path)
  checkpoint_dir = os.path.join(config.model_dir, "checkpoints")
  kept = file_digests(checkpoint_dir)
  common = [f"--model_dir={config.model_dir}", "--trainer.train_steps=400",
            "--eval.every=100", "--trainer.steps_per_execution=50",
            "--eval.num_samples=500", "--trainer.keep_checkpoints=10"]
  # A changed model flag: the usual refusal, and flags.json holds the run's settings.
  assert run_main(*common, "--model.num_generators=4") == 2
  captured = capsys.readouterr()
  assert (f"Recreated the missing {path} from the settings stored in "
          f"{_ckpt(config, 300)}.") in captured.out
  assert "--model.num_generators: saved 8, now 4" in captured.err
  recreated = run_settings.read_resolved(config.model_dir)
  assert recreated.run_settings() == base_run.run_settings()
  assert recreated.trainer.train_steps == 400  # this command's free settings
  assert file_digests(checkpoint_dir) == kept
  # The directory is usable: eval, and training with the run's flags.
  assert run_main(f"--model_dir={config.model_dir}", "--mode=eval",
                  "--eval.num_samples=500") == 0
  assert run_main(*common) == 0
  assert f"Resuming {config.model_dir} from step 300." in capsys.readouterr().out
  assert _state(config)[-1] == 400


def test_eval_without_flags_json_reads_the_checkpoints_settings(base_run, tmp_path,
                                                                capsys):
  config = _copy(base_run, tmp_path)
  path = os.path.join(config.model_dir, "flags.json")
  os.remove(path)
  loaded = run_settings.read_resolved(config.model_dir)
  assert loaded.run_settings() == base_run.run_settings()
  assert capsys.readouterr().out == (
      f"{path} is missing: using the settings stored in {_ckpt(config, 300)}.\n")
  assert not os.path.exists(path)


@pytest.mark.parametrize("content, problem", [
    ("truncated", "is not valid JSON (Unterminated string"),
    ('{"model": {"latent_dim": "abc"}}',
     "holds invalid settings: model.latent_dim must be an integer, got 'abc'"),
    ('{"model": {"generator_hidden": [32, "x"]}}',
     "holds invalid settings: model.generator_hidden must be a list of int, got "
     "[32, 'x']"),
    ('{"game": {"shared_z": 1}}',
     "holds invalid settings: game.shared_z must be true or false, got 1"),
    ('{"model": {"latent_dim": -2}}',
     "holds invalid settings: --model.latent_dim must be positive, got -2"),
    ('{"model": {"num_gens": 3}, "optimizer": {}}',
     "holds invalid settings: unknown settings: model.num_gens, optimizer"),
    ('{"model": 3}', "holds invalid settings: model must be an object of settings"),
    ("[1, 2]", "holds invalid settings: expected a JSON object of settings, got list"),
])
def test_a_damaged_flags_json_names_the_file_and_the_way_out(base_run, tmp_path,
                                                             default_strategy, content,
                                                             problem):
  config = _copy(base_run, tmp_path)
  path = os.path.join(config.model_dir, "flags.json")
  if content == "truncated":
    with open(path) as f:  # cut inside the model_dir string, whatever its length
      content = f.read()
    content = content[:content.index('"model_dir": "') + len('"model_dir": "') + 3]
  with open(path, "w") as f:
    f.write(content)
  before = file_digests(config.model_dir)
  way_out = (f"; the run's settings are also stored in its checkpoints: delete {path} "
             "and the next train command recreates it from them")
  for call in (lambda: run_settings.read_resolved(config.model_dir),
               lambda: trainer.train(config, default_strategy)):
    with pytest.raises(ConfigError) as error:
      call()
    message = str(error.value)
    assert message.startswith(f"{path} {problem}"), message
    assert message.endswith(way_out)
  assert file_digests(config.model_dir) == before


def test_settings_problems():
  assert run_settings.settings_problems({"seed": 1, "model": {"latent_dim": 3},
                                     "game": {"learning_rate": 1}}) == []
  assert run_settings.settings_problems({"seed": "1", "data": {"ring_std": True}}) == [
      "seed must be an integer, got '1'", "data.ring_std must be a number, got True"]


def test_a_first_run_that_diverged_does_not_lock_its_directory(tmp_path, capsys,
                                                               default_strategy):
  # One interval (100 steps) is enough: the diverged run stops before its first
  # checkpoint, and the corrected one needs only to write one.
  diverging = tiny_config(tmp_path / "run", **{"game.learning_rate": 1e30,
                                               "trainer.train_steps": 100})
  with pytest.raises(trainer.TrainingDivergedError, match="no checkpoint was written"):
    trainer.train(diverging, default_strategy)
  path = os.path.join(diverging.model_dir, "flags.json")
  assert run_settings.read_resolved(diverging.model_dir).game.learning_rate == 1e30
  capsys.readouterr()
  corrected = diverging.replace(**{"game.learning_rate": 2e-4})
  final = trainer.train(corrected, default_strategy)
  assert final["step"] == 100
  assert (f"Replaced {path}: {diverging.model_dir} holds no checkpoint, so this "
          "command's settings define the run (--game.learning_rate: saved 1e+30, now "
          "0.0002).\n") in capsys.readouterr().out
  assert run_settings.read_resolved(diverging.model_dir).game.learning_rate == 2e-4
