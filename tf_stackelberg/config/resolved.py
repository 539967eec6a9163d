"""The resolved configuration of a run, kept in `MODEL_DIR/flags.json`.

A run directory belongs to one run: the settings of the sections that define it (see
`Section.defines_run`) are written when training starts and checked on every later
invocation; the other settings may change.
"""

import os
from typing import Set

import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config, from_dict

RESOLVED_FLAGS_FILE = "flags.json"


def _flatten(values, prefix=""):
  flat = {}
  for key, value in values.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(_flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def _differences(saved, current, labels=("saved", "now")):
  """One line per flag whose value differs between two nested settings dicts."""
  saved, current = _flatten(saved), _flatten(current)
  return [f"--{k}: {labels[0]} {saved.get(k)!r}, {labels[1]} {current.get(k)!r}"
          for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


def _read(path):
  try:
    return files.read_json(path)
  except ValueError as e:
    raise ConfigError(str(e)) from e


def check_resolved(config: Config) -> bool:
  """Checks `config` against the resolved settings in its model directory.

  Returns whether the directory holds resolved settings; raises `ConfigError` listing
  the differences when their run-defining part differs from `config`.
  """
  path = os.path.join(config.model_dir, RESOLVED_FLAGS_FILE)
  if not tf.io.gfile.exists(path):
    return False
  saved = from_dict(_read(path)).run_settings()
  diffs = _differences(saved, config.run_settings())
  if diffs:
    raise ConfigError(
        f"{config.model_dir} holds a run with different settings (see {path}); "
        "use another --model_dir or the same flags:\n  " + "\n  ".join(diffs))
  return True


def write_resolved(config: Config) -> str:
  """Writes the resolved nested settings into the model directory; returns the path."""
  path = os.path.join(config.model_dir, RESOLVED_FLAGS_FILE)
  files.write_json(path, config.to_dict())
  return path


def write_or_check_resolved(config: Config) -> str:
  """Writes the resolved settings into the model directory, or checks them
  (`check_resolved`: nothing is written when they differ). Returns the file's path."""
  if check_resolved(config):
    return os.path.join(config.model_dir, RESOLVED_FLAGS_FILE)
  return write_resolved(config)


def read_resolved(model_dir: str) -> Config:
  """The configuration a run was trained with (for eval, export and sample)."""
  path = os.path.join(model_dir, RESOLVED_FLAGS_FILE)
  if not tf.io.gfile.exists(path):
    raise ConfigError(f"--model_dir={model_dir} holds no trained run ({path} missing)")
  return from_dict(_read(path))


def resolve_trained(config: Config, explicit: Set[str]) -> Config:
  """`config` with the run-defining settings of the run in `config.model_dir`.

  Args:
    config: the settings of this invocation.
    explicit: flag names given explicitly ('model.latent_dim'); a run-defining one
      that disagrees with the run raises `ConfigError`.
  """
  run_defining = read_resolved(config.model_dir).run_settings()
  conflicts = _differences(
      {k: v for k, v in _flatten(run_defining).items() if k in explicit},
      {k: v for k, v in _flatten(config.run_settings()).items() if k in explicit},
      labels=("run has", "flag says"))
  if conflicts:
    raise ConfigError(f"flags disagree with the run in --model_dir={config.model_dir}:"
                      "\n  " + "\n  ".join(conflicts))
  return from_dict(run_defining, base=config)
