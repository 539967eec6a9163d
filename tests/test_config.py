"""Tests for tf_stackelberg.config: section checks naming `--SECTION.FIELD`, the nested
resolved settings of a run directory (`flags.json`), what may change on resume, and the
absl flags generated from the sections (defaults -> flagfile -> command line)."""

import dataclasses
import glob
import json
import os

import pytest
from absl import flags

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config import flags as config_flags
from tf_stackelberg.config.sections import (SECTIONS, Config, DataConfig, EvalConfig,
                                            GameConfig, LossConfig, ModelConfig,
                                            RuntimeConfig, SamplingConfig, TrainerConfig,
                                            from_dict, run_fields, to_nested)
from tf_stackelberg.modes.names import check_names
from tf_stackelberg.training.run_settings import (read_resolved, resolve_trained,
                                                  write_or_check_resolved)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_DEFINING = {"data", "model", "loss", "game"}
FREE_ON_RESUME = {"trainer", "eval", "sampling", "runtime"}


def config_with(**values):
  """`Config()` with settings given by flag name ('game.batch_size')."""
  return Config().replace(**values)


# ------------------------------------------------------------------ sections
def test_sections_have_their_flag_names_and_run_roles():
  assert [s.name for s in SECTIONS] == ["data", "model", "loss", "game", "trainer",
                                        "eval", "sampling", "runtime"]
  assert {s.name for s in SECTIONS if s.defines_run} == RUN_DEFINING
  assert {s.name for s in SECTIONS if not s.defines_run} == FREE_ON_RESUME
  assert TrainerConfig().flag("train_steps") == "--trainer.train_steps"
  assert [f.name for f in run_fields()] == ["mode", "model_dir", "seed", "export_dir"]
  config = Config()
  assert [type(s) for s in config.sections()] == list(SECTIONS)
  for section in SECTIONS:
    assert section().validate() is None  # defaults are valid
    with pytest.raises(dataclasses.FrozenInstanceError):
      setattr(section(), dataclasses.fields(section)[0].name, None)


def test_defaults_are_valid_and_returned():
  config = Config()
  assert config.validate() is config
  assert config.validate(num_replicas=2) is config
  branch = config_with(**{"model.generator": "multi_branch", "model.num_generators": 1})
  assert branch.validate().model.num_generators == 1


@pytest.mark.parametrize("section,changes,flag", [
    (DataConfig, dict(size=-1), "--data.size"),
    (DataConfig, dict(ring_std=0.0), "--data.ring_std"),
    (ModelConfig, dict(num_generators=0), "--model.num_generators"),
    (ModelConfig, dict(generator_output="relu"), "--model.generator_output"),
    (ModelConfig, dict(discriminator_hidden=(512, 0)), "--model.discriminator_hidden"),
    (LossConfig, dict(gradient_penalty=-1.0), "--loss.gradient_penalty"),
    (GameConfig, dict(update_order="random"), "--game.update_order"),
    (GameConfig, dict(beta_1=1.0), "--game.beta_1"),
    (TrainerConfig, dict(train_steps=0), "--trainer.train_steps"),
    (EvalConfig, dict(num_samples=0), "--eval.num_samples"),
    (SamplingConfig, dict(wl_energy_range=(2.0, 1.0)), "--sampling.wl_energy_range"),
    (RuntimeConfig, dict(strategy="parameter_server"), "--runtime.strategy"),
])
def test_section_validate_names_its_flag(section, changes, flag):
  with pytest.raises(ConfigError) as error:
    section(**changes).validate()
  assert str(error.value).startswith(flag)


@pytest.mark.parametrize("changes,num_replicas,flag", [
    ({"game.update_order": "random"}, 1, "--game.update_order"),
    ({"model.generator_output": "relu"}, 1, "--model.generator_output"),
    ({"runtime.strategy": "parameter_server"}, 1, "--runtime.strategy"),
    ({"game.batch_size": 0}, 1, "--game.batch_size must be positive"),
    ({"game.batch_size": -64}, 1, "--game.batch_size must be positive"),
    ({"model.num_generators": 0}, 1, "--model.num_generators must be positive"),
    ({"model.latent_dim": -2}, 1, "--model.latent_dim"),
    ({"model.num_branches": 0}, 1, "--model.num_branches"),
    ({"model.batchnorm_epsilon": 0.0}, 1, "--model.batchnorm_epsilon"),
    ({"model.leaky_relu_slope": -0.1}, 1, "--model.leaky_relu_slope"),
    ({"data.ring_std": 0.0}, 1, "--data.ring_std"),
    ({"data.ring_modes": 0}, 1, "--data.ring_modes"),
    ({"data.grid_spacing": -2.0}, 1, "--data.grid_spacing"),
    ({"game.learning_rate": -1e-3}, 1, "--game.learning_rate"),
    ({"trainer.steps_per_execution": 0}, 1, "--trainer.steps_per_execution"),
    ({"trainer.train_steps": 0}, 1, "--trainer.train_steps"),
    ({"trainer.keep_checkpoints": 0}, 1, "--trainer.keep_checkpoints"),
    ({"eval.every": 0}, 1, "--eval.every"),
    ({"eval.num_samples": -5}, 1, "--eval.num_samples"),
    ({"data.size": -1}, 1, "--data.size"),
    ({"seed": -3}, 1, "--seed must be >= 0"),
    ({"loss.classifier_weight": -0.1}, 1, "--loss.classifier_weight"),
    ({"loss.gradient_penalty": -1.0}, 1, "--loss.gradient_penalty"),
    ({"game.beta_1": 1.0}, 1, "--game.beta_1 must be in [0, 1)"),
    ({"game.beta_2": -0.5}, 1, "--game.beta_2"),
    ({"model.generator_hidden": ()}, 1, "--model.generator_hidden"),
    ({"model.discriminator_hidden": (512, 0)}, 1, "--model.discriminator_hidden"),
    ({"model.branch_hidden": (-1,)}, 1, "--model.branch_hidden"),
    ({"sampling.num_samples": 0}, 1, "--sampling.num_samples"),
    ({"sampling.steps": 0}, 1, "--sampling.steps"),
    ({"sampling.step_size": 0.0}, 1, "--sampling.step_size"),
    ({"sampling.wl_bins": 0}, 1, "--sampling.wl_bins"),
    ({"runtime.cpu_devices": -1}, 1, "--runtime.cpu_devices"),
    ({"data.size": 32}, 1, "--data.size=32 is smaller than --game.batch_size=64"),
    ({"game.batch_size": 63}, 2, "--game.batch_size=63 is not divisible by the 2"),
    ({"game.batch_size": 64}, 3, "--game.batch_size=64 is not divisible by the 3"),
    ({"loss.classifier_weight": 1.0, "model.num_generators": 1}, 1,
     "--loss.classifier_weight"),
    ({"sampling.wl_energy_range": (210.0, 130.0)}, 1, "--sampling.wl_energy_range"),
    ({"sampling.wl_energy_range": (130.0,)}, 1, "--sampling.wl_energy_range"),
])
def test_validate_rejects_bad_values_naming_the_flag(changes, num_replicas, flag):
  config = config_with(**changes)
  with pytest.raises(ConfigError) as error:
    config.validate(num_replicas=num_replicas)
  assert flag in str(error.value)


def test_validate_accepts_edge_values():
  config_with(**{"data.size": 0}).validate()  # streaming
  config_with(**{"data.size": 64, "game.batch_size": 64}).validate()
  config_with(**{"game.batch_size": 64}).validate(num_replicas=4)
  config_with(**{"game.beta_1": 0.0, "loss.classifier_weight": 0.0, "seed": 0,
                 "loss.gradient_penalty": 0.0}).validate()
  config_with(**{"sampling.wl_energy_range": (130.0, 210.0)}).validate()
  config_with(**{"model.leaky_relu_slope": 0.0, "runtime.cpu_devices": 0}).validate()


def test_train_steps_need_not_be_a_multiple_of_eval_every():
  # The run evaluates and checkpoints at its last step too.
  config_with(**{"trainer.train_steps": 250, "eval.every": 100}).validate()
  config_with(**{"trainer.train_steps": 25500}).validate()
  config_with(**{"trainer.train_steps": 50, "eval.every": 1000}).validate()


def test_validate_does_not_check_registry_names_but_check_names_does():
  config = config_with(**{"loss.family": "foo"})
  config.validate()
  with pytest.raises(ConfigError, match="--loss.family='foo'.*known: hinge"):
    check_names(config)


def test_config_error_is_a_value_error():
  assert issubclass(ConfigError, ValueError)


# ------------------------------------------------------------------ nested data
def test_replace_takes_flag_names_and_keeps_the_original():
  config = Config()
  changed = config.replace(**{"trainer.train_steps": 200, "seed": 4,
                              "model.generator_hidden": [16, 16]})
  assert changed.trainer.train_steps == 200 and changed.seed == 4
  assert changed.model.generator_hidden == (16, 16)
  assert changed.model.num_generators == config.model.num_generators
  assert config.trainer.train_steps == 25000 and config.seed == 0
  assert changed.data is config.data  # untouched sections are shared, not copied
  with pytest.raises(ConfigError, match="unknown settings: trainer.train_stpes"):
    config.replace(**{"trainer.train_stpes": 1})
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.seed = 1


def test_to_nested():
  assert to_nested({"trainer.train_steps": 5, "seed": 1, "trainer.keep_checkpoints": 2,
                    "eval.every": 3}) == {
                        "trainer": {"train_steps": 5, "keep_checkpoints": 2},
                        "seed": 1, "eval": {"every": 3}}


def test_from_dict_turns_lists_into_tuples_and_keeps_missing_settings():
  config = from_dict({"model": {"generator_hidden": [16, 16], "num_generators": 4},
                      "seed": 9})
  assert config.model.generator_hidden == (16, 16)
  assert config.model.num_generators == 4 and config.seed == 9
  assert config.game.batch_size == Config().game.batch_size
  based = from_dict({"game": {"batch_size": 32}}, base=config)
  assert based.game.batch_size == 32 and based.model.num_generators == 4
  assert based.seed == 9


@pytest.mark.parametrize("values,message", [
    ({"num_gens": 4}, "unknown settings: num_gens"),
    ({"model": {"num_gens": 4}}, "unknown settings: model.num_gens"),
    ({"model": {"num_gens": 4, "hidden": 1}},
     "unknown settings: model.hidden, model.num_gens"),
    ({"optimizer": {"lr": 1.0}}, "unknown settings: optimizer"),
    ({"trainer": 5}, "trainer: expected a mapping"),
])
def test_from_dict_refuses_unknown_nested_keys(values, message):
  with pytest.raises(ConfigError, match=message):
    from_dict(values)


def test_to_dict_is_nested_plain_data_and_round_trips():
  config = config_with(**{"model.generator_hidden": (16, 8), "seed": 7,
                          "sampling.wl_energy_range": (1.0, 2.0),
                          "eval.evaluators": ("mixture",)})
  nested = config.to_dict()
  assert set(nested) == {f.name for f in run_fields()} | {s.name for s in SECTIONS}
  for section in SECTIONS:
    assert set(nested[section.name]) == {f.name for f in dataclasses.fields(section)}
  assert nested["model"]["generator_hidden"] == [16, 8]
  assert nested["eval"]["evaluators"] == ["mixture"]
  assert json.loads(json.dumps(nested)) == nested
  assert from_dict(json.loads(json.dumps(nested))) == config


def test_run_settings_hold_only_the_run_defining_part():
  config = Config()
  settings = config.run_settings()
  assert set(settings) == {"seed"} | RUN_DEFINING
  # The generator prior reweights a trained run's generators: free, like data paths.
  assert settings["model"] == {k: v for k, v in config.to_dict()["model"].items()
                               if k != "generator_prior"}
  # Every run-defining setting changes them; no other setting does.
  assert config_with(seed=1).run_settings() != settings
  assert config_with(**{"game.learning_rate": 1e-3}).run_settings() != settings
  for key in ("mode", "model_dir", "export_dir", "trainer.train_steps", "eval.every",
              "sampling.sampler", "runtime.jit_compile", "model.generator_prior"):
    value = {"mode": "eval", "model_dir": "x", "export_dir": "y",
             "trainer.train_steps": 7, "eval.every": 7, "sampling.sampler": "rep",
             "runtime.jit_compile": False, "model.generator_prior": "geometric2"}[key]
    assert config_with(**{key: value}).run_settings() == settings, key


# ------------------------------------------------------------------ resolved settings
def test_write_or_check_resolved_writes_nested_flags_json(tmp_path):
  config = config_with(model_dir=str(tmp_path / "run"),
                       **{"model.num_generators": 4, "model.generator_hidden": (16, 8)})
  path = write_or_check_resolved(config)
  assert path == os.path.join(config.model_dir, "flags.json")
  with open(path) as f:
    saved = json.load(f)
  # Every setting is recorded, nested by section, free ones included.
  assert saved == config.to_dict()
  assert saved["model"]["num_generators"] == 4
  assert saved["model"]["generator_hidden"] == [16, 8]
  assert saved["model_dir"] == config.model_dir
  assert saved["trainer"]["train_steps"] == 25000
  assert os.listdir(config.model_dir) == ["flags.json"]  # no temporary file left
  # The same settings again: accepted, file unchanged.
  before = open(path).read()
  assert write_or_check_resolved(config) == path
  assert open(path).read() == before


def test_write_or_check_resolved_refuses_different_run_settings(tmp_path):
  config = config_with(model_dir=str(tmp_path), **{"model.num_generators": 4})
  path = write_or_check_resolved(config)
  before = open(path).read()
  changed = config.replace(**{"model.num_generators": 2, "game.learning_rate": 1e-3})
  with pytest.raises(ConfigError) as error:
    write_or_check_resolved(changed)
  message = str(error.value)
  assert "--model.num_generators: saved 4, now 2" in message
  assert "--game.learning_rate: saved 0.0002, now 0.001" in message
  assert "--game.batch_size" not in message  # only the differences are listed
  assert open(path).read() == before    # nothing written


@pytest.mark.parametrize("key,value", [
    ("seed", 1), ("data.dataset", "grid"), ("data.ring_std", 0.02),
    ("model.generator_hidden", (64,)), ("loss.family", "hinge"),
    ("loss.classifier_weight", 0.5), ("game.shared_z", False),
])
def test_every_run_defining_section_is_checked_on_resume(tmp_path, key, value):
  config = config_with(model_dir=str(tmp_path))
  write_or_check_resolved(config)
  with pytest.raises(ConfigError, match=f"--{key}: saved"):
    write_or_check_resolved(config.replace(**{key: value}))


def test_write_or_check_resolved_allows_different_free_settings(tmp_path):
  config = config_with(model_dir=str(tmp_path))
  path = write_or_check_resolved(config)
  before = open(path).read()
  resumed = config.replace(**{
      "mode": "eval", "export_dir": "elsewhere", "trainer.train_steps": 50000,
      "trainer.steps_per_execution": 10, "trainer.keep_checkpoints": 1,
      "eval.every": 500, "eval.num_samples": 100, "eval.evaluators": ("mixture",),
      "sampling.sampler": "rep", "sampling.num_samples": 10, "sampling.steps": 5,
      "sampling.wl_energy_range": (1.0, 2.0), "runtime.jit_compile": False,
      "runtime.cpu_devices": 2, "runtime.strategy": "mirrored"})
  assert write_or_check_resolved(resumed) == path
  assert open(path).read() == before


def test_read_resolved_round_trips(tmp_path):
  config = config_with(model_dir=str(tmp_path), seed=7, **{
      "model.num_generators": 3, "model.generator_hidden": (16, 8),
      "game.update_order": "d_first", "game.shared_z": False, "data.ring_std": 0.02,
      "game.learning_rate": 1e-3, "trainer.train_steps": 5000,
      "loss.family": "wasserstein"})
  write_or_check_resolved(config)
  loaded = read_resolved(str(tmp_path))
  assert loaded == config
  assert loaded.run_settings() == config.run_settings()
  assert loaded.model.generator_hidden == (16, 8)
  assert isinstance(loaded.model.generator_hidden, tuple)
  assert loaded.data.ring_std == 0.02 and loaded.game.shared_z is False


def test_read_resolved_without_a_run_names_model_dir(tmp_path):
  with pytest.raises(ConfigError, match="--model_dir=.*holds no trained run"):
    read_resolved(str(tmp_path / "missing"))


def test_broken_flags_json_is_a_config_error_naming_the_file(tmp_path):
  (tmp_path / "flags.json").write_text("{not json")
  with pytest.raises(ConfigError, match="flags.json is not valid JSON"):
    read_resolved(str(tmp_path))
  with pytest.raises(ConfigError, match="flags.json is not valid JSON"):
    write_or_check_resolved(config_with(model_dir=str(tmp_path)))
  (tmp_path / "flags.json").write_text('{"model": {"num_gens": 3}}')
  with pytest.raises(ConfigError, match="unknown settings: model.num_gens"):
    read_resolved(str(tmp_path))


# ------------------------------------------------------------------ resolve_trained
@pytest.fixture
def trained_dir(tmp_path):
  config = config_with(model_dir=str(tmp_path), seed=5, **{
      "model.num_generators": 3, "game.batch_size": 32, "loss.family": "hinge",
      "trainer.train_steps": 1000, "eval.num_samples": 3000})
  write_or_check_resolved(config)
  return config


def test_resolve_trained_takes_the_run_defining_settings_from_the_run(trained_dir):
  invocation = config_with(model_dir=trained_dir.model_dir, mode="sample", **{
      "sampling.sampler": "rep", "eval.num_samples": 10, "runtime.jit_compile": False})
  resolved = resolve_trained(invocation, explicit={"sampling.sampler",
                                                   "eval.num_samples"})
  # Run-defining: the run's (the flags' defaults differ and were not given).
  assert resolved.run_settings() == trained_dir.run_settings()
  assert resolved.model.num_generators == 3 and resolved.seed == 5
  assert resolved.loss.family == "hinge" and resolved.game.batch_size == 32
  # Free settings: this invocation's.
  assert resolved.mode == "sample" and resolved.model_dir == trained_dir.model_dir
  assert resolved.sampling.sampler == "rep" and resolved.eval.num_samples == 10
  assert resolved.runtime.jit_compile is False
  assert resolved.trainer.train_steps == Config().trainer.train_steps


def test_resolve_trained_accepts_explicit_flags_that_agree(trained_dir):
  invocation = config_with(model_dir=trained_dir.model_dir, mode="eval", seed=5,
                           **{"model.num_generators": 3})
  resolved = resolve_trained(invocation, explicit={"model.num_generators", "seed"})
  assert resolved.run_settings() == trained_dir.run_settings()


def test_resolve_trained_refuses_explicit_conflicting_flags(trained_dir):
  invocation = config_with(model_dir=trained_dir.model_dir, mode="eval", seed=6, **{
      "model.num_generators": 5, "game.batch_size": 16, "loss.family": "hinge"})
  with pytest.raises(ConfigError) as error:
    resolve_trained(invocation, explicit={"model.num_generators", "seed",
                                          "loss.family"})
  message = str(error.value)
  assert "flags disagree with the run in --model_dir=" in message
  assert "--model.num_generators: run has 3, flag says 5" in message
  assert "--seed: run has 5, flag says 6" in message
  assert "--loss.family" not in message  # agrees
  assert "--game.batch_size" not in message  # differs, but was not given


def test_resolve_trained_without_a_run(tmp_path):
  with pytest.raises(ConfigError, match="holds no trained run"):
    resolve_trained(config_with(model_dir=str(tmp_path), mode="eval"), explicit=set())


# ------------------------------------------------------------------ absl flags
@pytest.fixture
def flag_values():
  values = flags.FlagValues()
  config_flags.define_flags(values)
  return values


def flag_names():
  names = {f.name for f in run_fields()}
  for section in SECTIONS:
    names |= {f"{section.name}.{f.name}" for f in dataclasses.fields(section)}
  return names


def test_define_flags_covers_every_field_and_is_idempotent(flag_values):
  assert set(flag_values) >= flag_names()
  assert "trainer.train_steps" in flag_values and "model_dir" in flag_values
  config_flags.define_flags(flag_values)  # second call: no DuplicateFlagError
  flag_values(["prog"])
  assert config_flags.config_from_flags(flag_values) == Config()
  assert config_flags.explicitly_set(flag_values) == set()


def test_flagfile_then_command_line_overrides(tmp_path, flag_values):
  flagfile = tmp_path / "ring.cfg"
  flagfile.write_text("# a comment\n--model.num_generators=2\n--game.batch_size=32\n"
                      "--model.generator_hidden=16,16\n--game.update_order=d_first\n"
                      "--game.shared_z=false\n--trainer.train_steps=250\n")
  flag_values(["prog", f"--flagfile={flagfile}", "--model.num_generators=4",
               "--game.learning_rate=0.001", "--sampling.wl_energy_range=130,210.5",
               "--eval.every=100", "--seed=3"])
  config = config_flags.config_from_flags(flag_values)
  assert config.model.num_generators == 4            # command line beats flagfile
  assert config.game.batch_size == 32                # flagfile beats default
  assert config.model.generator_hidden == (16, 16)
  assert config.game.update_order == "d_first"
  assert config.game.shared_z is False
  assert config.game.learning_rate == pytest.approx(1e-3)
  assert config.sampling.wl_energy_range == (130.0, 210.5)
  assert all(isinstance(v, float) for v in config.sampling.wl_energy_range)
  assert config.model.discriminator_hidden == Config().model.discriminator_hidden
  assert config.trainer.train_steps == 250 and config.eval.every == 100
  assert config.seed == 3
  assert config_flags.explicitly_set(flag_values) == {
      "model.num_generators", "game.batch_size", "model.generator_hidden",
      "game.update_order", "game.shared_z", "game.learning_rate",
      "sampling.wl_energy_range", "trainer.train_steps", "eval.every", "seed"}
  config.validate()


def test_negated_bool_flag(flag_values):
  flag_values(["prog", "--nogame.shared_z", "--noruntime.jit_compile"])
  config = config_flags.config_from_flags(flag_values)
  assert config.game.shared_z is False and config.runtime.jit_compile is False


def test_list_flags_parse_to_typed_tuples(flag_values):
  flag_values(["prog", "--model.branch_hidden=8,4", "--model.discriminator_hidden=64",
               "--eval.evaluators=mixture,scatter"])
  config = config_flags.config_from_flags(flag_values)
  assert config.model.branch_hidden == (8, 4)
  assert config.model.discriminator_hidden == (64,)
  assert all(isinstance(v, int) for v in config.model.branch_hidden)
  assert config.eval.evaluators == ("mixture", "scatter")
  assert config.sampling.wl_energy_range == ()


def test_bad_list_flag_raises_config_error_naming_it(flag_values):
  flag_values(["prog", "--model.generator_hidden=32,wide"])
  with pytest.raises(ConfigError, match="--model.generator_hidden=32,wide"):
    config_flags.config_from_flags(flag_values)


def test_empty_list_flag_is_refused_by_validate(flag_values):
  flag_values(["prog", "--model.generator_hidden="])
  config = config_flags.config_from_flags(flag_values)
  with pytest.raises(ConfigError, match="--model.generator_hidden must be a non-empty"):
    config.validate()


def test_enum_flags_reject_unknown_choices(flag_values):
  with pytest.raises(flags.IllegalFlagValueError):
    flag_values(["prog", "--game.update_order=random"])


def test_old_flag_names_are_unknown(flag_values):
  with pytest.raises(flags.UnrecognizedFlagError):
    flag_values(["prog", "--train_steps=200"])


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs",
                                                                "*.cfg"))),
                         ids=os.path.basename)
def test_example_configs_are_valid(path, flag_values):
  flag_values(["prog", f"--flagfile={path}"])
  config = config_flags.config_from_flags(flag_values)
  check_names(config.validate())
  assert config.model_dir.startswith("runs/")
  assert "model_dir" in config_flags.explicitly_set(flag_values)
