"""The machine a benchmark runs on: its CPU and its load.

Figures are only comparable within one machine, and on a shared machine within one
load, so the tools print the CPU line (model, logical CPUs, AVX-512 and AVX512_BF16,
from lscpu or /proc/cpuinfo: `tf_stackelberg.common.machine`) and the load average
with their tables.
"""

import os

from tf_stackelberg.common.machine import cpu_info, cpu_line  # pylint: disable=unused-import


def load_average():
  """The one-minute load average (NaN where the system has none)."""
  return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def load_line():
  """The one-, five- and fifteen-minute load averages as /proc/loadavg shows them."""
  with open("/proc/loadavg", encoding="ascii") as f:
    return " ".join(f.read().split()[:3])
