"""The settings of a run directory: `MODEL_DIR/flags.json` and the run-defining
settings its checkpoints store.

A run directory belongs to one run: the settings of the sections that define it (see
`Section.defines_run`) are written when training starts and checked on every later
invocation; the other settings may change. Every checkpoint stores the run-defining
settings too (`tf_stackelberg.training.checkpoints`): they are checked on restore, and
they recreate `flags.json` when it was lost. This module sits beside the checkpoints it
reads, so that `config/` stays a leaf of the package.
"""

import dataclasses
import os
import typing
from typing import Set

import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import SECTIONS, Config, from_dict, run_fields
from tf_stackelberg.training import checkpoints

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


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number",
               str: "a string"}


def _type_problem(value, annotation):
  """What is wrong with `value` as a setting of type `annotation`, or None."""
  if typing.get_origin(annotation) is tuple:
    if not isinstance(value, (list, tuple)):
      return f"must be a list, got {value!r}"
    element = typing.get_args(annotation)[0]
    return next((f"must be a list of {element.__name__}, got {value!r}"
                 for v in value if _type_problem(v, element)), None)
  if annotation is bool:
    ok = isinstance(value, bool)
  elif annotation is int:
    ok = isinstance(value, int) and not isinstance(value, bool)
  elif annotation is float:  # JSON writes 1.0 as 1.0, but a hand-written 1 is fine
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  else:
    ok = isinstance(value, annotation)
  if ok:
    return None
  return f"must be {_TYPE_NAMES.get(annotation, annotation)}, got {value!r}"


def settings_problems(values):
  """What is wrong with nested settings (as in flags.json) against the field types of
  `tf_stackelberg.config.sections`: a list of strings, empty when nothing is."""
  if not isinstance(values, dict):
    return [f"expected a JSON object of settings, got {type(values).__name__}"]
  sections = {s.name: s for s in SECTIONS}
  fields = {f.name: f for f in run_fields()}
  problems, unknown = [], []
  for key, value in values.items():
    if key in fields:
      problem = _type_problem(value, fields[key].type)
      if problem:
        problems.append(f"{key} {problem}")
    elif key in sections:
      if not isinstance(value, dict):
        problems.append(f"{key} must be an object of settings, got {value!r}")
        continue
      types = {f.name: f.type for f in dataclasses.fields(sections[key])}
      for name, item in value.items():
        if name not in types:
          unknown.append(f"{key}.{name}")
          continue
        problem = _type_problem(item, types[name])
        if problem:
          problems.append(f"{key}.{name} {problem}")
    else:
      unknown.append(key)
  if unknown:
    problems.insert(0, "unknown settings: " + ", ".join(unknown))
  return problems


def _config_from(values, source, base=None):
  """A validated `Config` from nested settings read from `source` (a file or a
  checkpoint); `ValueError` says what is wrong."""
  problems = settings_problems(values)
  if problems:
    raise ValueError(f"{source} holds invalid settings: " + "; ".join(problems))
  try:
    return from_dict(values, base=base).validate()
  except ConfigError as e:
    raise ValueError(f"{source} holds invalid settings: {e}") from e


def _recovery(model_dir, path):
  if checkpoints.find(checkpoints.directory_of(model_dir))[0]:
    return (f"the run's settings are also stored in its checkpoints: delete {path} and "
            "the next train command recreates it from them")
  return f"{model_dir} holds no checkpoint: delete {path} and train again"


def _load(path):
  """The `Config` in the flags.json at `path`; `ValueError` says what is wrong."""
  return _config_from(files.read_json(path), path)


def _read_config(model_dir):
  """The `Config` in `model_dir/flags.json` (None if there is none)."""
  path = os.path.join(model_dir, RESOLVED_FLAGS_FILE)
  if not tf.io.gfile.exists(path):
    return None
  try:
    return _load(path)
  except ValueError as e:
    raise ConfigError(f"{e}; {_recovery(model_dir, path)}") from e


def _refuse_differences(saved, config, source):
  diffs = _differences(saved, config.run_settings())
  if diffs:
    raise ConfigError(
        f"{config.model_dir} holds a run with different settings (see {source}); "
        "use another --model_dir or the same flags:\n  " + "\n  ".join(diffs))


def check_resolved(config: Config) -> bool:
  """Checks `config` against the resolved settings in its model directory.

  Returns whether the directory holds resolved settings; raises `ConfigError` listing
  the differences when their run-defining part differs from `config`.
  """
  saved = _read_config(config.model_dir)
  if saved is None:
    return False
  _refuse_differences(saved.run_settings(), config,
                      os.path.join(config.model_dir, RESOLVED_FLAGS_FILE))
  return True


def check_stored(config: Config, prefix: str, stored):
  """Checks the run settings checkpoint `prefix` stores (None: it stores none, as
  checkpoints written before they were stored) against `config`'s; `ConfigError`
  lists the differences."""
  if stored is None:
    return
  try:
    saved = _config_from(stored, f"checkpoint {prefix}")
  except ValueError as e:
    raise ConfigError(str(e)) from e
  _refuse_differences(saved.run_settings(), config, f"checkpoint {prefix}")


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


def _stored_config(model_dir, base=None):
  """`(prefix, Config)` from the settings the newest checkpoint stores (the other
  settings from `base`), or None when no checkpoint stores any."""
  stored = checkpoints.stored_settings(checkpoints.directory_of(model_dir))
  if stored is None:
    return None
  prefix, settings = stored
  try:
    return prefix, _config_from(settings, f"checkpoint {prefix}", base=base)
  except ValueError as e:
    raise ConfigError(str(e)) from e


def prepare_training(config: Config):
  """Settles `MODEL_DIR/flags.json` before `config` trains in its model directory.

  - flags.json beside a checkpoint: the run-defining settings must be `config`'s
    (`ConfigError` listing the differences).
  - flags.json without a checkpoint (its run stopped before the first one, e.g. on a
    non-finite loss): `config` replaces it, and one line says so when they differ.
  - a checkpoint without flags.json: flags.json is recreated from the settings the
    newest checkpoint stores (the other sections from `config`), then checked as
    above, so that the directory stays usable when `config` differs.

  Returns:
    None, or a function that writes flags.json: call it once the model was built
    from `config`, so that settings the builders refuse leave the directory as it
    was.
  """
  path = os.path.join(config.model_dir, RESOLVED_FLAGS_FILE)
  has_checkpoint = bool(checkpoints.find(checkpoints.directory_of(config.model_dir))[0])
  if not has_checkpoint:
    note = None
    if tf.io.gfile.exists(path):
      try:
        diffs = _differences(_load(path).run_settings(), config.run_settings())
        if diffs:
          note = (f"Replaced {path}: {config.model_dir} holds no checkpoint, so this "
                  f"command's settings define the run ({'; '.join(diffs)}).")
      except ValueError as e:
        note = (f"Replaced {path}, on which no checkpoint depends: "
                f"{str(e).replace(path, 'it', 1)}.")

    def write():
      write_resolved(config)
      if note:
        print(note, flush=True)
    return write
  if tf.io.gfile.exists(path):
    check_resolved(config)
    return None
  stored = _stored_config(config.model_dir, base=config)
  if stored is None:  # checkpoints written before they stored the settings
    def write():
      write_resolved(config)
      print(f"Recreated the missing {path} from this command's flags (the "
            "checkpoints store no settings).", flush=True)
    return write
  prefix, recreated = stored
  write_resolved(recreated)
  print(f"Recreated the missing {path} from the settings stored in {prefix}.",
        flush=True)
  _refuse_differences(recreated.run_settings(), config, path)
  return None


def read_resolved(model_dir: str) -> Config:
  """The configuration a run was trained with (for eval, export and sample).

  Without flags.json, the run-defining settings the newest checkpoint stores (nothing
  is written: these modes only read the run).
  """
  saved = _read_config(model_dir)
  if saved is not None:
    return saved
  path = os.path.join(model_dir, RESOLVED_FLAGS_FILE)
  stored = _stored_config(model_dir)
  if stored is None:
    raise ConfigError(f"--model_dir={model_dir} holds no trained run ({path} missing)")
  prefix, config = stored
  print(f"{path} is missing: using the settings stored in {prefix}.", flush=True)
  return config


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
