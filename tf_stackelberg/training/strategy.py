"""The `tf.distribute` strategy a run trains under."""

import tensorflow as tf


def make_strategy(cpu_replicas=0):
  """MirroredStrategy over the local accelerators, or the default strategy.

  Args:
    cpu_replicas: if > 1, split the (single) CPU into this many logical devices and
      mirror over them. This exercises the distributed code path on a machine without
      accelerators; it must run before TensorFlow initialises its devices.

  Returns:
    A `tf.distribute.Strategy`: MirroredStrategy when there is more than one GPU (or
    `cpu_replicas` > 1), else the default (no-op) strategy.
  """
  if cpu_replicas > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if not existing or len(existing) != cpu_replicas:
      try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
      except RuntimeError as e:  # devices already initialised in this process
        raise RuntimeError(
            f"--cpu_replicas={cpu_replicas} must be set before TensorFlow initialises "
            f"its devices ({e})") from e
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices[:cpu_replicas])
  if len(tf.config.list_physical_devices("GPU")) > 1:
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()
