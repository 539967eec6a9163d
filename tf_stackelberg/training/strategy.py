"""The `tf.distribute` strategy a run uses (`--runtime.strategy`)."""

import tensorflow as tf


def _split_cpu(num_devices):
  """Splits the CPU into `num_devices` logical devices (before TF initialises them)."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  existing = tf.config.get_logical_device_configuration(cpu)
  if not existing or len(existing) != num_devices:
    try:
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError as e:  # devices already initialised in this process
      raise RuntimeError(
          f"--runtime.cpu_devices={num_devices} must be set before TensorFlow "
          f"initialises its devices ({e})") from e
  return [d.name for d in tf.config.list_logical_devices("CPU")][:num_devices]


def _default(devices):  # pylint: disable=unused-argument
  return tf.distribute.get_strategy()


def _mirrored(devices):
  return tf.distribute.MirroredStrategy(devices)


def _auto(devices):
  many = devices is not None or len(tf.config.list_physical_devices("GPU")) > 1
  return _mirrored(devices) if many else _default(devices)


_STRATEGIES = {"default": _default, "mirrored": _mirrored, "auto": _auto}


def make_strategy(runtime):
  """The strategy `runtime` (a `RuntimeConfig`) asks for.

  * `default`: the default (no-op) strategy.
  * `mirrored`: MirroredStrategy over the GPUs, or over the logical CPU devices of
    `--runtime.cpu_devices`, or over the CPU.
  * `auto`: `mirrored` when there is more than one GPU or `cpu_devices` > 1, else
    `default`.

  `cpu_devices` > 1 splits the CPU into logical devices, which exercises the
  distributed code path on a machine without accelerators.
  """
  devices = _split_cpu(runtime.cpu_devices) if runtime.cpu_devices > 1 else None
  return _STRATEGIES[runtime.strategy](devices)
