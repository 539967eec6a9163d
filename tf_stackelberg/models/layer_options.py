"""How the layers of the models being built compute: their dtype policy
(`--runtime.precision`) and whether BatchNorm synchronises its statistics across
replicas (`--runtime.sync_batch_norm`); docs/design.md sections 12.3 and 12.5.

Both are settings of the runtime, not of the architecture: the same checkpoint loads
under any of them (weights are float32 under every policy, and a synchronised
BatchNorm holds the same variables). The builders read them from `layer_options`,
a scope around the construction of the models.
"""

import contextlib
import contextvars

import keras

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

_SYNC_BATCH_NORM = contextvars.ContextVar("sync_batch_norm", default=False)


def sync_batch_norm():
  """Whether BatchNorm layers built now use the global batch's statistics."""
  return _SYNC_BATCH_NORM.get()


@contextlib.contextmanager
def layer_options(precision="float32", synchronized_batch_norm=False):
  """Within the scope, new layers take the Keras dtype policy `precision` and
  BatchNorm layers synchronise across replicas if `synchronized_batch_norm`.

  Keras reads the global dtype policy when a layer is constructed; the previous
  policy is restored on exit, so layers built elsewhere (the evaluation
  classifiers, a later model in the same process) are unaffected.
  """
  if precision not in PRECISIONS:
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
  previous = keras.config.dtype_policy()
  token = _SYNC_BATCH_NORM.set(bool(synchronized_batch_norm))
  keras.config.set_dtype_policy(precision)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)
    _SYNC_BATCH_NORM.reset(token)


def wrap_optimizer(optimizer, precision):
  """`optimizer` with dynamic loss scaling for float16 (whose gradients underflow
  without it), unchanged otherwise."""
  if precision == "mixed_float16":
    return keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer
