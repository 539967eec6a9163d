"""absl flags generated from the config sections, so defaults live in one place.

Section fields become `--SECTION.FIELD` flags (`--trainer.train_steps=200`), run-level
fields plain ones (`--model_dir`). A flagfile holds the same lines.
"""

import dataclasses
import typing

from absl import flags

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import SECTIONS, Config, from_dict, run_fields

FLAGS = flags.FLAGS


def _flag_fields():
  """(flag name, dataclass field) of every setting."""
  pairs = [(f.name, f) for f in run_fields()]
  for section in SECTIONS:
    pairs += [(f"{section.name}.{f.name}", f) for f in dataclasses.fields(section)]
  return pairs


_DEFINE_BY_TYPE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
                   float: flags.DEFINE_float, str: flags.DEFINE_string}


def _define(name, field, flag_values):
  help_text, choices = field.metadata["help"], field.metadata["choices"]
  default = field.default
  if choices:
    flags.DEFINE_enum(name, default, choices, help_text, flag_values=flag_values)
  elif field.type in _DEFINE_BY_TYPE:
    _DEFINE_BY_TYPE[field.type](name, default, help_text, flag_values=flag_values)
  else:  # tuples: comma-separated lists
    flags.DEFINE_list(name, [str(v) for v in default], help_text + " (comma-separated)",
                      flag_values=flag_values)


def define_flags(flag_values=FLAGS, only=None):
  """Defines one flag per setting (idempotent); `only`: just these flag names
  ('data.source'), for tools that take a few of the settings."""
  for name, field in _flag_fields():
    if name not in flag_values and (only is None or name in only):
      _define(name, field, flag_values)


def config_from_some_flags(names, flag_values=FLAGS) -> Config:
  """`Config()` with the settings of the flags `names` (defined by
  `define_flags(only=names)`) read from the parsed flags, validated."""
  fields = dict(_flag_fields())
  values = {}
  for name in names:
    raw = flag_values[name].value
    field = fields[name]
    values[name] = (_parse_list(name, field, raw) if isinstance(field.default, tuple)
                    else raw)
  return Config().replace(**values).validate()


def _parse_list(name, field, raw):
  args = typing.get_args(field.type)
  kind = args[0] if args else str
  try:
    return tuple(kind(v) for v in raw if str(v).strip())
  except ValueError as e:
    raise ConfigError(f"--{name}={','.join(raw)}: expected comma-separated "
                      f"{kind.__name__} values ({e})") from e


def config_from_flags(flag_values=FLAGS) -> Config:
  """Reads the parsed flags into a `Config`."""
  nested = {}
  for name, field in _flag_fields():
    raw = flag_values[name].value
    value = _parse_list(name, field, raw) if isinstance(field.default, tuple) else raw
    section, _, key = name.rpartition(".")
    (nested.setdefault(section, {}) if section else nested)[key] = value
  return from_dict(nested)


def explicitly_set(flag_values=FLAGS):
  """Flag names ('trainer.train_steps') given on the command line or in a flagfile."""
  return {name for name, _ in _flag_fields() if flag_values[name].present}
