"""Configuration: defaults, flags, validation and the resolved settings of a run."""
from tf_stackelberg.config.config import (Config, ConfigError, RUNTIME_FIELDS,
                                          from_dict, model_settings, read_resolved,
                                          validate, write_or_check_resolved)
