"""Tests for tf_stackelberg.config: validation messages, the resolved settings of a run
directory, and the absl flags generated from `Config` (defaults -> flagfile ->
command-line overrides)."""

import dataclasses
import json
import os

import pytest
from absl import flags

from tf_stackelberg.config import (Config, ConfigError, RUNTIME_FIELDS, from_dict,
                                   model_settings, read_resolved, validate,
                                   write_or_check_resolved)
from tf_stackelberg.config import flags as config_flags


# ------------------------------------------------------------------ validate
def test_defaults_are_valid_and_returned():
  config = Config()
  assert validate(config) is config
  assert validate(config, num_replicas=2) is config
  assert validate(Config(generator="multi_branch", num_generators=1)).num_generators == 1


@pytest.mark.parametrize("changes,num_replicas,flag", [
    (dict(dataset="moons"), 1, "--dataset"),
    (dict(mode="serve"), 1, "--mode"),
    (dict(update_order="random"), 1, "--update_order"),
    (dict(sampler="hmc"), 1, "--sampler"),
    (dict(generator_output="relu"), 1, "--generator_output"),
    (dict(batch_size=0), 1, "--batch_size"),
    (dict(batch_size=-64), 1, "--batch_size"),
    (dict(num_generators=0), 1, "--num_generators"),
    (dict(latent_dim=-2), 1, "--latent_dim"),
    (dict(ring_std=0.0), 1, "--ring_std"),
    (dict(learning_rate=-1e-3), 1, "--learning_rate"),
    (dict(steps_per_execution=0), 1, "--steps_per_execution"),
    (dict(dataset_size=-1), 1, "--dataset_size"),
    (dict(seed=-3), 1, "--seed"),
    (dict(classifier_weight=-0.1), 1, "--classifier_weight"),
    (dict(beta_1=1.0), 1, "--beta_1"),
    (dict(beta_2=-0.5), 1, "--beta_2"),
    (dict(generator_hidden=()), 1, "--generator_hidden"),
    (dict(discriminator_hidden=(512, 0)), 1, "--discriminator_hidden"),
    (dict(branch_hidden=(-1,)), 1, "--branch_hidden"),
    (dict(dataset_size=32), 1, "--dataset_size"),
    (dict(batch_size=63), 2, "--batch_size"),
    (dict(batch_size=64), 3, "--batch_size"),
    (dict(train_steps=25500), 1, "--eval_every"),
    (dict(generator="multi_branch"), 1, "--num_generators"),
    (dict(classifier_weight=1.0, num_generators=1), 1, "--classifier_weight"),
    (dict(wl_energy_range=(210.0, 130.0)), 1, "--wl_energy_range"),
    (dict(wl_energy_range=(130.0,)), 1, "--wl_energy_range"),
])
def test_validate_rejects_bad_values_naming_the_flag(changes, num_replicas, flag):
  config = dataclasses.replace(Config(), **changes)
  with pytest.raises(ConfigError) as error:
    validate(config, num_replicas=num_replicas)
  assert flag in str(error.value)


def test_validate_accepts_edge_values():
  validate(Config(dataset_size=0))              # streaming
  validate(Config(dataset_size=64, batch_size=64))
  validate(Config(batch_size=64), num_replicas=4)
  validate(Config(beta_1=0.0, classifier_weight=0.0, seed=0))
  validate(Config(wl_energy_range=(130.0, 210.0)))


def test_config_error_is_a_value_error():
  assert issubclass(ConfigError, ValueError)


def test_from_dict_turns_lists_into_tuples_and_rejects_unknown_names():
  config = from_dict({"generator_hidden": [16, 16], "num_generators": 4})
  assert config.generator_hidden == (16, 16)
  assert config.num_generators == 4
  assert config.batch_size == Config().batch_size
  with pytest.raises(ConfigError, match="num_gens"):
    from_dict({"num_gens": 4})


# ------------------------------------------------------------------ resolved settings
def test_runtime_fields_are_config_fields():
  names = {f.name for f in dataclasses.fields(Config)}
  assert RUNTIME_FIELDS <= names
  # What defines the trained model is not a runtime field.
  for name in ("seed", "num_generators", "batch_size", "update_order", "dataset",
               "generator_hidden", "learning_rate", "shared_z"):
    assert name not in RUNTIME_FIELDS
  assert set(model_settings(Config())) == names - RUNTIME_FIELDS


def test_write_or_check_resolved_writes_flags_json(tmp_path):
  config = Config(model_dir=str(tmp_path / "run"), num_generators=4,
                  generator_hidden=(16, 8))
  path = write_or_check_resolved(config)
  assert path == os.path.join(config.model_dir, "flags.json")
  with open(path) as f:
    saved = json.load(f)
  # Every setting is recorded, runtime ones included.
  assert set(saved) == {f.name for f in dataclasses.fields(Config)}
  assert saved["num_generators"] == 4
  assert saved["generator_hidden"] == [16, 8]
  assert saved["model_dir"] == config.model_dir
  assert not os.path.exists(path + ".tmp")
  # The same settings again: accepted, file unchanged.
  before = open(path).read()
  assert write_or_check_resolved(config) == path
  assert open(path).read() == before


def test_write_or_check_resolved_refuses_different_model_settings(tmp_path):
  config = Config(model_dir=str(tmp_path), num_generators=4)
  path = write_or_check_resolved(config)
  before = open(path).read()
  changed = dataclasses.replace(config, num_generators=2, learning_rate=1e-3)
  with pytest.raises(ConfigError) as error:
    write_or_check_resolved(changed)
  message = str(error.value)
  assert "--num_generators" in message and "--learning_rate" in message
  assert "--batch_size" not in message  # only the differences are listed
  assert open(path).read() == before    # nothing written


def test_write_or_check_resolved_allows_different_runtime_settings(tmp_path):
  config = Config(model_dir=str(tmp_path))
  path = write_or_check_resolved(config)
  before = open(path).read()
  resumed = dataclasses.replace(
      config, mode="eval", train_steps=50000, eval_every=500, steps_per_execution=10,
      jit_compile=False, eval_samples=100, keep_checkpoints=1, sampler="rep",
      num_samples=10, mcmc_steps=5, wl_energy_range=(1.0, 2.0), cpu_replicas=2)
  assert write_or_check_resolved(resumed) == path
  assert open(path).read() == before


def test_read_resolved_round_trips_the_model_settings(tmp_path):
  config = Config(model_dir=str(tmp_path), num_generators=3, generator_hidden=(16, 8),
                  update_order="d_first", shared_z=False, ring_std=0.02, seed=7,
                  learning_rate=1e-3, train_steps=5000)
  write_or_check_resolved(config)
  loaded = read_resolved(str(tmp_path))
  assert model_settings(loaded) == model_settings(config)
  assert loaded.generator_hidden == (16, 8) and isinstance(loaded.generator_hidden, tuple)
  assert loaded.ring_std == 0.02 and loaded.shared_z is False
  overridden = read_resolved(str(tmp_path), {"model_dir": str(tmp_path), "mode": "eval",
                                             "eval_samples": 10})
  assert overridden.model_dir == str(tmp_path)
  assert overridden.mode == "eval" and overridden.eval_samples == 10
  assert overridden.num_generators == 3


def test_read_resolved_without_a_run_names_model_dir(tmp_path):
  with pytest.raises(ConfigError, match="--model_dir"):
    read_resolved(str(tmp_path / "missing"))


# ------------------------------------------------------------------ absl flags
@pytest.fixture
def flag_values():
  values = flags.FlagValues()
  config_flags.define_flags(values)
  return values


def test_define_flags_covers_every_field_and_is_idempotent(flag_values):
  names = {f.name for f in dataclasses.fields(Config)}
  assert names <= set(flag_values)
  config_flags.define_flags(flag_values)  # second call: no DuplicateFlagError
  flag_values(["prog"])
  assert config_flags.config_from_flags(flag_values) == Config()
  assert config_flags.explicitly_set(flag_values) == set()


def test_flagfile_then_command_line_overrides(tmp_path, flag_values):
  flagfile = tmp_path / "ring.cfg"
  flagfile.write_text("--num_generators=2\n--batch_size=32\n--generator_hidden=16,16\n"
                      "--update_order=d_first\n--noshared_z\n")
  flag_values(["prog", f"--flagfile={flagfile}", "--num_generators=4",
               "--learning_rate=0.001", "--wl_energy_range=130,210.5"])
  config = config_flags.config_from_flags(flag_values)
  assert config.num_generators == 4            # command line beats flagfile
  assert config.batch_size == 32               # flagfile beats default
  assert config.generator_hidden == (16, 16)
  assert config.update_order == "d_first"
  assert config.shared_z is False
  assert config.learning_rate == pytest.approx(1e-3)
  assert config.wl_energy_range == (130.0, 210.5)
  assert all(isinstance(v, float) for v in config.wl_energy_range)
  assert config.discriminator_hidden == Config().discriminator_hidden  # default
  assert config.seed == Config().seed
  assert config_flags.explicitly_set(flag_values) == {
      "num_generators", "batch_size", "generator_hidden", "update_order", "shared_z",
      "learning_rate", "wl_energy_range"}
  validate(config)


def test_list_flags_parse_to_typed_tuples(flag_values):
  flag_values(["prog", "--branch_hidden=8,4", "--discriminator_hidden=64"])
  config = config_flags.config_from_flags(flag_values)
  assert config.branch_hidden == (8, 4)
  assert config.discriminator_hidden == (64,)
  assert all(isinstance(v, int) for v in config.branch_hidden)
  assert config.wl_energy_range == ()


def test_bad_list_flag_raises_config_error_naming_it(flag_values):
  flag_values(["prog", "--generator_hidden=32,wide"])
  with pytest.raises(ConfigError, match="--generator_hidden"):
    config_flags.config_from_flags(flag_values)


def test_enum_flags_reject_unknown_choices(flag_values):
  with pytest.raises(flags.IllegalFlagValueError):
    flag_values(["prog", "--dataset=moons"])
