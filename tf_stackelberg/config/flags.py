"""absl flags generated from `Config`, so defaults live in exactly one place."""

import dataclasses
import typing

from absl import flags

from tf_stackelberg.config.config import Config, ConfigError

FLAGS = flags.FLAGS


def _element_type(field):
  args = typing.get_args(field.type)
  return args[0] if args else int


def define_flags(flag_values=FLAGS):
  """Defines one flag per `Config` field (idempotent)."""
  for field in dataclasses.fields(Config):
    if field.name in flag_values:
      continue
    help_text, choices = field.metadata["help"], field.metadata["choices"]
    default = field.default
    if choices:
      flags.DEFINE_enum(field.name, default, choices, help_text, flag_values=flag_values)
    elif field.type is bool:
      flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
    elif field.type is int:
      flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
    elif field.type is float:
      flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
    elif field.type is str:
      flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)
    else:  # tuples: comma-separated lists
      flags.DEFINE_list(field.name, [str(v) for v in default],
                        help_text + " (comma-separated)", flag_values=flag_values)


def _parse_list(field, raw):
  kind = _element_type(field)
  try:
    return tuple(kind(v) for v in raw if str(v).strip())
  except ValueError as e:
    raise ConfigError(f"--{field.name}={','.join(raw)}: expected comma-separated "
                      f"{kind.__name__} values ({e})") from e


def config_from_flags(flag_values=FLAGS) -> Config:
  """Reads the parsed flags into a `Config`."""
  values = {}
  for field in dataclasses.fields(Config):
    raw = flag_values[field.name].value
    values[field.name] = (_parse_list(field, raw) if isinstance(field.default, tuple)
                          else raw)
  return Config(**values)


def explicitly_set(flag_values=FLAGS):
  """Names of the `Config` flags given on the command line or in a flagfile."""
  return {f.name for f in dataclasses.fields(Config) if flag_values[f.name].present}
