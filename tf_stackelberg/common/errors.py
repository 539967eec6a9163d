"""Errors that the command line reports as one line and an exit status."""


class ConfigError(ValueError):
  """A setting or an input file is invalid; the message names the flag or file."""
