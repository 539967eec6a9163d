"""Checks of the arguments of the sampling kernels.

A kernel checks the arguments whose values are known when it is built
(Python numbers, numpy arrays, eager or constant tensors) at once, raising
`ValueError` naming the argument and its value (`check_static_arguments`),
and, with `validate_args`, the others (tensors computed in a graph) by
`tf.debugging` assertions in the graph that uses them (`argument_assertions`).
"""

import numpy as np
import tensorflow as tf

__all__ = [
    'PROBS_SUM_TOLERANCE',
    'argument_assertions',
    'check_num_bins',
    'check_static_arguments',
]

# Tolerance on the sum of `target_bin_probs`.
PROBS_SUM_TOLERANCE = 1e-4


def check_num_bins(num_bins):
  """`num_bins` as a Python int; `ValueError` unless an integer of at least 2."""
  num_bins_value = tf.get_static_value(num_bins)
  if num_bins_value is None or np.ndim(num_bins_value) != 0 or int(
      num_bins_value) != num_bins_value:
    raise ValueError('`num_bins` must be a Python integer, got '
                     f'{num_bins!r}.')
  num_bins = int(num_bins_value)
  if num_bins < 2:
    raise ValueError(f'`num_bins` must be at least 2, got {num_bins}.')
  return num_bins


def _static(value):
  """numpy value of `value` if it is known now, else `None`."""
  if value is None:
    return None
  if not (tf.is_tensor(value) or isinstance(value, tf.Variable)):
    try:  # Python numbers and numpy arrays, in their own precision
      return np.asarray(value, np.float64)
    except (TypeError, ValueError):  # e.g. a list of tensors
      pass
  try:
    return tf.get_static_value(tf.convert_to_tensor(value))
  except (TypeError, ValueError):
    return None


def check_static_arguments(**arguments):
  """Checks the arguments of a kernel whose values are known now.

  Knows `energy_lo`, `energy_hi` (finite, increasing), `step_size`,
  `bias_gain_t0` (positive), `target_accept_prob` (in `(0, 1)`) and
  `target_bin_probs` (`[num_bins]`, non-negative, summing to one within
  `PROBS_SUM_TOLERANCE`); `num_bins` (a Python int) gives that shape.

  Returns:
    tuple of the names of the arguments whose values are not known (to be
    checked by `argument_assertions`).

  Raises:
    ValueError: naming the argument and its value for an invalid one.
  """
  dynamic = []
  values = {}
  for name, value in arguments.items():
    if name == 'num_bins' or value is None:
      continue
    static = _static(value)
    if static is None:
      dynamic.append(name)
    else:
      values[name] = np.asarray(static, np.float64)

  def fail(name, requirement):
    value = values[name]
    shown = value.item() if value.ndim == 0 else value.tolist()
    raise ValueError(f'`{name}` must {requirement}, got {shown}.')

  for name in ('energy_lo', 'energy_hi'):
    if name in values and not np.all(np.isfinite(values[name])):
      fail(name, 'be finite')
  if ('energy_lo' in values and 'energy_hi' in values and
      not np.all(values['energy_hi'] > values['energy_lo'])):
    raise ValueError('Need `energy_hi > energy_lo`, got energy_lo='
                     f"{values['energy_lo'].tolist()} and energy_hi="
                     f"{values['energy_hi'].tolist()}.")
  for name in ('step_size', 'bias_gain_t0'):
    if name in values and not np.all(values[name] > 0.):
      fail(name, 'be positive')
  if 'target_accept_prob' in values and not np.all(
      (values['target_accept_prob'] > 0.) &
      (values['target_accept_prob'] < 1.)):
    fail('target_accept_prob', 'be in (0, 1)')
  probs = arguments.get('target_bin_probs')
  if probs is not None:
    shape = tf.TensorShape(probs.shape if hasattr(probs, 'shape') else
                           np.shape(probs))
    if not shape.is_compatible_with([arguments['num_bins']]):
      raise ValueError('`target_bin_probs` must have shape [num_bins] = '
                       f"[{arguments['num_bins']}], got shape {shape}.")
  if 'target_bin_probs' in values:
    probs = values['target_bin_probs']
    if not np.all(probs >= 0.):  # NaN fails too
      fail('target_bin_probs', 'be non-negative')
    if not abs(probs.sum() - 1.) <= PROBS_SUM_TOLERANCE:
      fail('target_bin_probs',
           f'sum to 1 (within {PROBS_SUM_TOLERANCE:g}; the sum is '
           f'{probs.sum():.6g})')
  return tuple(dynamic)


def argument_assertions(parameters, dynamic, dtype):
  """`tf.debugging` assertions of the checks of `check_static_arguments`.

  Args:
    parameters: `dict` of the kernel's arguments.
    dynamic: names of the arguments whose values were not known when the
      kernel was built (the others have been checked then).
    dtype: float dtype of the comparisons.

  Returns:
    list of assertion ops (empty eagerly, where they have run already).
  """
  assertions = []

  def cast(name):
    return tf.cast(parameters[name], dtype)

  for name in ('energy_lo', 'energy_hi'):
    if name in dynamic:
      assertions.append(tf.debugging.assert_all_finite(
          cast(name), message=f'`{name}` must be finite.'))
  if 'energy_lo' in dynamic or 'energy_hi' in dynamic:
    assertions.append(tf.debugging.assert_greater(
        cast('energy_hi'), cast('energy_lo'),
        message='Need `energy_hi > energy_lo`.'))
  for name in ('step_size', 'bias_gain_t0'):
    if name in dynamic:
      assertions.append(tf.debugging.assert_positive(
          cast(name), message=f'`{name}` must be positive.'))
  if 'target_accept_prob' in dynamic:
    prob = cast('target_accept_prob')
    assertions.append(tf.debugging.assert_positive(
        prob, message='`target_accept_prob` must be in (0, 1).'))
    assertions.append(tf.debugging.assert_less(
        prob, tf.ones_like(prob),
        message='`target_accept_prob` must be in (0, 1).'))
  if 'target_bin_probs' in dynamic:
    probs = cast('target_bin_probs')
    assertions.append(tf.debugging.assert_non_negative(
        probs, message='`target_bin_probs` must be non-negative.'))
    assertions.append(tf.debugging.assert_less_equal(
        tf.abs(tf.reduce_sum(probs) - 1.),
        tf.constant(PROBS_SUM_TOLERANCE, dtype),
        message=f'`target_bin_probs` must sum to 1 (within '
        f'{PROBS_SUM_TOLERANCE:g}).'))
  return assertions
