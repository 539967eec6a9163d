"""The run configuration: every setting, its default and its check, in one place.

`Config` is the single source of defaults. Command-line flags are generated from its
fields (see `tf_stackelberg.config.flags`), so a value is resolved in the order
defaults -> `--flagfile` -> command-line overrides, as in TF Model Garden.

Fields are grouped into *model* settings, which define a run and must not change when a
run resumes, and *runtime* settings (`RUNTIME_FIELDS`), which may differ between
invocations on the same model directory (mode, length, logging cadence, ...).
"""

import dataclasses
import json
import os
from typing import Any, Dict, Tuple

import tensorflow as tf


class ConfigError(ValueError):
  """A setting is invalid; the message names the flag and what is wrong with it."""


def _field(default, help_text, choices=None):
  return dataclasses.field(
      default=default, metadata={"help": help_text, "choices": choices})


@dataclasses.dataclass(frozen=True)
class Config:
  """All settings of a run. Field names are the flag names."""

  # What to do and where.
  mode: str = _field("train", "What to run.", ("train", "eval", "export", "sample"))
  model_dir: str = _field("runs/default", "Run directory: checkpoints, TensorBoard "
                          "logs, resolved flags, metrics and figures.")
  seed: int = _field(0, "Seed of the whole run (weights, data order, latents).")

  # Data.
  dataset: str = _field("ring", "Synthetic mixture to learn.", ("ring", "grid"))
  dataset_size: int = _field(8000, "Points drawn once as the fixed training set; 0 "
                             "draws fresh points for every batch (unlimited sampling).")
  shuffle: bool = _field(False, "Reshuffle the fixed set every epoch (the reference "
                         "iterates it in a fixed order).")
  ring_modes: int = _field(8, "Number of modes of the ring.")
  ring_radius: float = _field(1.0, "Radius of the ring.")
  ring_std: float = _field(0.01, "Standard deviation of each ring mode.")
  grid_size: int = _field(5, "Modes per side of the grid.")
  grid_spacing: float = _field(2.0, "Distance between neighbouring grid modes.")
  grid_std: float = _field(0.05, "Standard deviation of each grid mode.")

  # Models.
  generator: str = _field("ensemble", "K generators in one ensemble layer, or the "
                          "multi-branch baseline (one generator, mean of branches).",
                          ("ensemble", "multi_branch"))
  num_generators: int = _field(8, "K, the number of generators (1 = plain GAN).")
  latent_dim: int = _field(2, "Dimension of the latent z ~ N(0, I).")
  generator_hidden: Tuple[int, ...] = _field((32,), "Hidden widths of each generator.")
  generator_output: str = _field("tanh", "Output activation of the generators.",
                                 ("tanh", "linear"))
  num_branches: int = _field(8, "Branches of the multi-branch generator.")
  branch_hidden: Tuple[int, ...] = _field((128, 256, 512, 1024),
                                          "Hidden widths of each branch.")
  batchnorm_epsilon: float = _field(0.8, "BatchNorm epsilon of the branches.")
  discriminator_hidden: Tuple[int, ...] = _field((512, 256),
                                                 "Hidden widths of the discriminator.")
  leaky_relu_slope: float = _field(0.2, "Negative slope of the LeakyReLUs.")

  # The game.
  classifier_weight: float = _field(0.0, "beta: weight of the K-way classifier loss "
                                    "that pushes generators apart (0 = no head).")
  update_order: str = _field("g_first", "Order of the updates in one step: generators "
                             "then discriminator (reference MoG/MNIST scripts), "
                             "discriminator first (reference CIFAR script), or "
                             "both from the same point.",
                             ("g_first", "d_first", "simultaneous"))
  shared_z: bool = _field(True, "One latent batch shared by all generators (reference) "
                          "instead of an independent batch per generator.")
  batch_size: int = _field(64, "Global batch size (real points per step; each "
                           "generator makes this many fakes).")
  learning_rate: float = _field(2e-4, "Adam learning rate of both players.")
  beta_1: float = _field(0.5, "Adam beta_1.")
  beta_2: float = _field(0.999, "Adam beta_2.")

  # Runtime: may change between invocations of the same run.
  train_steps: int = _field(25000, "Total training steps (resumed runs continue to it).")
  eval_every: int = _field(1000, "Steps between evaluations, checkpoints and summaries.")
  steps_per_execution: int = _field(100, "Train steps per compiled call.")
  jit_compile: bool = _field(True, "Compile the train step with XLA (faster for the "
                             "mixture MLPs on CPU).")
  eval_samples: int = _field(10000, "Samples for the mixture metrics.")
  keep_checkpoints: int = _field(3, "Checkpoints kept in the model directory.")
  cpu_replicas: int = _field(0, "If > 1, split the CPU into this many logical devices "
                             "and train with MirroredStrategy (tests of distribution).")
  deterministic: bool = _field(True, "Enable TF op determinism: same seed, same run.")
  export_dir: str = _field("", "SavedModel directory (default: MODEL_DIR/saved_model).")

  # Latent MCMC sampling (--mode=sample).
  sampler: str = _field("wl", "Latent sampler.", ("wl", "rep", "ddls", "mh", "none"))
  sample_dir: str = _field("", "Output directory of --mode=sample "
                           "(default: MODEL_DIR/samples_SAMPLER).")
  num_samples: int = _field(10000, "Chains in --mode=sample (one sample each).")
  mcmc_steps: int = _field(640, "MCMC steps per chain.")
  mcmc_step_size: float = _field(0.01, "Initial Langevin step size.")
  mcmc_joint: bool = _field(True, "Also move the generator index k by MH.")
  wl_bins: int = _field(50, "Wang-Landau energy bins.")
  wl_t0: float = _field(300.0, "SAMC gain constant: gain t0 / max(t0, t).")
  wl_energy_range: Tuple[float, ...] = _field((), "Fixed energy range LO,HI; empty "
                                              "sets it from warm-up quantiles.")
  wl_resample: bool = _field(True, "Resample the final states by their importance "
                             "weights to target the unbiased distribution.")
  calibrate: bool = _field(True, "Calibrate the discriminator logit before sampling.")


RUNTIME_FIELDS = frozenset({
    "mode", "model_dir", "train_steps", "eval_every", "steps_per_execution",
    "jit_compile", "eval_samples", "keep_checkpoints", "export_dir", "sampler",
    "sample_dir", "num_samples", "mcmc_steps", "mcmc_step_size", "mcmc_joint", "wl_bins",
    "wl_t0", "wl_energy_range", "wl_resample", "calibrate", "cpu_replicas",
})

RESOLVED_FLAGS_FILE = "flags.json"


def _positive(config, *names):
  for name in names:
    if getattr(config, name) <= 0:
      raise ConfigError(f"--{name} must be positive, got {getattr(config, name)}")


def validate(config: Config, num_replicas: int = 1) -> Config:
  """Checks every setting; raises `ConfigError` naming the first bad flag."""
  for field in dataclasses.fields(Config):
    choices = field.metadata["choices"]
    value = getattr(config, field.name)
    if choices and value not in choices:
      raise ConfigError(f"--{field.name}={value!r} is not one of {', '.join(choices)}")
  _positive(config, "train_steps", "batch_size", "num_generators", "latent_dim",
            "eval_every", "steps_per_execution", "eval_samples", "keep_checkpoints",
            "ring_modes", "ring_radius", "ring_std", "grid_size", "grid_spacing",
            "grid_std", "num_branches", "batchnorm_epsilon", "learning_rate",
            "num_samples", "mcmc_steps", "mcmc_step_size", "wl_bins", "wl_t0")
  for name in ("dataset_size", "classifier_weight", "cpu_replicas", "seed"):
    if getattr(config, name) < 0:
      raise ConfigError(f"--{name} must be >= 0, got {getattr(config, name)}")
  for name in ("beta_1", "beta_2"):
    if not 0.0 <= getattr(config, name) < 1.0:
      raise ConfigError(f"--{name} must be in [0, 1), got {getattr(config, name)}")
  for name in ("generator_hidden", "branch_hidden", "discriminator_hidden"):
    widths = getattr(config, name)
    if not widths or any(w <= 0 for w in widths):
      raise ConfigError(f"--{name} must be a non-empty list of positive widths, "
                        f"got {','.join(map(str, widths)) or 'nothing'}")
  if config.dataset_size and config.dataset_size < config.batch_size:
    raise ConfigError(f"--dataset_size={config.dataset_size} is smaller than "
                      f"--batch_size={config.batch_size}")
  if config.batch_size % num_replicas:
    raise ConfigError(f"--batch_size={config.batch_size} is not divisible by the "
                      f"{num_replicas} replicas of the distribution strategy")
  if config.train_steps % config.eval_every:
    raise ConfigError(f"--train_steps={config.train_steps} must be a multiple of "
                      f"--eval_every={config.eval_every}")
  if config.generator == "multi_branch" and config.num_generators != 1:
    raise ConfigError("--generator=multi_branch is ONE generator: set "
                      "--num_generators=1 and the branch count with --num_branches")
  if config.classifier_weight > 0 and config.num_generators < 2:
    raise ConfigError("--classifier_weight > 0 needs --num_generators >= 2")
  if config.wl_energy_range and (len(config.wl_energy_range) != 2 or
                                 config.wl_energy_range[0] >= config.wl_energy_range[1]):
    raise ConfigError("--wl_energy_range must be two increasing numbers LO,HI, got "
                      f"{','.join(map(str, config.wl_energy_range))}")
  return config


def model_settings(config: Config) -> Dict[str, Any]:
  """The settings that define a run (compared when a run resumes)."""
  return {k: _jsonable(v) for k, v in dataclasses.asdict(config).items()
          if k not in RUNTIME_FIELDS}


def _jsonable(value):
  return list(value) if isinstance(value, tuple) else value


def from_dict(values: Dict[str, Any], base: Config = Config()) -> Config:
  """Builds a config from a dict of field values (lists become tuples)."""
  fields = {f.name for f in dataclasses.fields(Config)}
  unknown = set(values) - fields
  if unknown:
    raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
  fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
  return dataclasses.replace(base, **fixed)


def write_or_check_resolved(config: Config) -> str:
  """Writes the resolved settings into the model directory, or checks them.

  A model directory belongs to one run: if it already holds resolved settings that
  differ from `config`, nothing is written and `ConfigError` lists the differences.
  Returns the path of the settings file.
  """
  path = os.path.join(config.model_dir, RESOLVED_FLAGS_FILE)
  current = model_settings(config)
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      saved = json.load(f)
    saved_model = {k: v for k, v in saved.items() if k not in RUNTIME_FIELDS}
    diffs = [f"--{k}: saved {saved_model.get(k)!r}, now {current.get(k)!r}"
             for k in sorted(set(saved_model) | set(current))
             if saved_model.get(k) != current.get(k)]
    if diffs:
      raise ConfigError(
          f"{config.model_dir} holds a run with different settings (see {path}); "
          "use another --model_dir or the same flags:\n  " + "\n  ".join(diffs))
    return path
  tf.io.gfile.makedirs(config.model_dir)
  resolved = {k: _jsonable(v) for k, v in dataclasses.asdict(config).items()}
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "w") as f:
    json.dump(resolved, f, indent=2, sort_keys=True)
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return path


def read_resolved(model_dir: str, overrides: Dict[str, Any] = None) -> Config:
  """Loads the settings a run was trained with (for eval, export and sample)."""
  path = os.path.join(model_dir, RESOLVED_FLAGS_FILE)
  if not tf.io.gfile.exists(path):
    raise ConfigError(f"--model_dir={model_dir} holds no trained run ({path} missing)")
  with tf.io.gfile.GFile(path) as f:
    saved = json.load(f)
  saved = {k: v for k, v in saved.items() if k not in RUNTIME_FIELDS}
  saved.update(overrides or {})
  return from_dict(saved)
