"""What machine a benchmark ran on: the CPU model and its vector extensions.

Benchmarks print this above their tables, because figures are only comparable
within one machine (docs/design.md, section on benchmarks).
"""

import os
import re
import subprocess


def _lscpu():
  try:
    return subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                          check=False).stdout
  except (OSError, subprocess.SubprocessError):
    return ""


def cpu_info():
  """The CPU model (lscpu's 'Model name'), the logical CPU count and whether the CPU
  has AVX2, AVX-512 and AVX512_BF16, as a dict."""
  model, flags = "unknown", set()
  for line in _lscpu().splitlines():
    key, _, value = line.partition(":")
    if key.strip() == "Model name" and model == "unknown":
      model = value.strip()
    elif key.strip() == "Flags":
      flags.update(value.split())
  if not flags and os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      match = re.search(r"^flags\s*:(.*)$", f.read(), re.MULTILINE)
    if match:
      flags.update(match.group(1).split())
  return dict(model=model, logical_cpus=os.cpu_count(), avx2="avx2" in flags,
              avx512=any(f.startswith("avx512") for f in flags),
              avx512_bf16="avx512_bf16" in flags)


def cpu_line(cpu=None):
  """One line naming the CPU and its AVX-512 / AVX512_BF16 support."""
  cpu = cpu_info() if cpu is None else cpu

  def yes(value):
    return "yes" if value else "no"
  return (f"CPU: {cpu['model']}, {cpu['logical_cpus']} logical CPUs; AVX-512: "
          f"{yes(cpu['avx512'])}; AVX512_BF16: {yes(cpu['avx512_bf16'])}")
