"""Imports TensorFlow without its start-up chatter.

TensorFlow's native libraries log before `absl::InitializeLog()` runs, so
`TF_CPP_MIN_LOG_LEVEL` cannot silence them: on a machine without a GPU every command
(`--help` included) printed "Could not find cuda drivers" twice, a CPU-feature note
and an E-level `cuInit` failure. Here the process's standard error is redirected to a
temporary file while TensorFlow loads and enumerates its devices; afterwards the lines
that are known start-up noise are dropped and everything else is replayed, so real
errors still reach the user. `TF_CPP_MIN_LOG_LEVEL=0` in the environment turns the
filter off and shows TensorFlow's full start-up log.
"""

import logging
import os
import sys
import tempfile

# Substrings of start-up lines that carry no information for a user of this tool.
NOISE = (
    "All log messages before absl::InitializeLog()",
    "cudart_stub.cc",
    "cpu_feature_guard.cc",
    "To enable the following instructions",
    "failed call to cuInit",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "oneDNN custom operations are on",
    "TF-TRT Warning",
    "This TensorFlow binary is optimized",
)

# Python-level warnings from libraries that say nothing actionable here.
_QUIET_WARNINGS = (
    # TFP's FFT-based effective sample size casts its complex64 result to float32.
    "You are casting an input of type complex64 to an incompatible dtype float32",
)


def is_noise(line):
  return any(marker in line for marker in NOISE)


class _DropKnownWarnings(logging.Filter):

  def filter(self, record):
    message = record.getMessage()
    return not any(text in message for text in _QUIET_WARNINGS)


def quiet_known_warnings():
  """Drops the known harmless warnings of TensorFlow's Python logger."""
  logging.getLogger("tensorflow").addFilter(_DropKnownWarnings())


def import_tensorflow_quietly():
  """Imports TensorFlow (and enumerates its devices) with its start-up noise filtered;
  returns the module."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile(mode="w+b") as capture:
    os.dup2(capture.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.list_physical_devices()  # device start-up logs here (cuInit)
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      kept = [line for line in capture.read().decode(errors="replace").splitlines(True)
              if not is_noise(line)]
    sys.stderr.write("".join(kept))
    sys.stderr.flush()
  quiet_known_warnings()
  return tf
