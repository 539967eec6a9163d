"""Conversion of results (numpy, tensors, tuples, non-finite floats) to strict JSON."""

import math

import numpy as np


def to_jsonable(value):
  """`value` as plain Python data that `json.dump(..., allow_nan=False)` accepts.

  numpy arrays and scalars (and anything with `.numpy()`, i.e. eager tensors) become
  lists and Python numbers, tuples become lists, dict keys become strings, and
  non-finite floats become None, since strict JSON has no NaN or infinity.
  """
  if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
    value = value.numpy()
  if isinstance(value, dict):
    return {str(k): to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return to_jsonable(value.tolist())
  if isinstance(value, (np.bool_, bool)):
    return bool(value)
  if isinstance(value, (np.integer, int)):
    return int(value)
  if isinstance(value, (np.floating, float)):
    value = float(value)
    return value if math.isfinite(value) else None
  return value
