"""A flagfile read into a `Config` with the command line's own flags.

The flags are those `python -m tf_stackelberg.main` defines, in a private flag set, so
a tool that also defines flags of its own does not meet them twice. Flagfiles name
each other relative to the repository root (configs/cifar10_quick.cfg holds
`--flagfile=configs/cifar10.cfg`), so they are read from there. Reading one imports
absl and the config sections, not TensorFlow.
"""

import contextlib
import os

from absl import flags

from tf_stackelberg.config import flags as config_flags

# The checkout these tools belong to.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_flagfile(flagfile, overrides=None):
  """The `Config` of `flagfile` (relative to the repository root, or absolute) with
  `overrides` ({flag name: value}) applied; not validated."""
  values = flags.FlagValues()
  config_flags.define_flags(values)
  with contextlib.chdir(REPO):
    values(["tool", f"--flagfile={os.path.join(REPO, flagfile)}"])
  return config_flags.config_from_flags(values).replace(**(overrides or {}))
