"""The `tf.distribute` strategy a run uses (`--runtime.strategy`), and which task of
a cluster this process is (docs/design.md section 12.1)."""

import json
import os

import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError


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


def cluster_spec():
  """The parsed `TF_CONFIG` (`{'cluster': ..., 'task': ...}`), or None without one.

  Raises:
    ConfigError: `TF_CONFIG` is not JSON, or names no task of its cluster.
  """
  text = os.environ.get("TF_CONFIG", "").strip()
  if not text:
    return None
  try:
    spec = json.loads(text)
    task = spec["task"]
    jobs = spec["cluster"]
    address_count = len(jobs[task["type"]])
    index = int(task["index"])
  except (ValueError, KeyError, TypeError) as e:
    raise ConfigError(f"TF_CONFIG is not a cluster description with a task "
                      f"({type(e).__name__}: {e}); expected JSON like "
                      '{"cluster": {"worker": ["host:port", ...]}, '
                      '"task": {"type": "worker", "index": 0}}') from e
  if not 0 <= index < address_count:
    raise ConfigError(f"TF_CONFIG task index {index} is not one of the "
                      f"{address_count} {task['type']} addresses of its cluster")
  return spec


def _default(runtime, devices):  # pylint: disable=unused-argument
  return tf.distribute.get_strategy()


def _mirrored(runtime, devices):  # pylint: disable=unused-argument
  return tf.distribute.MirroredStrategy(devices)


def _auto(runtime, devices):
  many = devices is not None or len(tf.config.list_physical_devices("GPU")) > 1
  return _mirrored(runtime, devices) if many else _default(runtime, devices)


def _multi_worker(runtime, devices):  # pylint: disable=unused-argument
  spec = cluster_spec()
  if spec is None:
    raise ConfigError("--runtime.strategy=multi_worker needs the cluster in the "
                      "TF_CONFIG environment variable (JSON with 'cluster' and "
                      "'task'); none is set")
  # Collectives over gRPC between the workers; the devices are each worker's GPUs,
  # or its CPU.
  return tf.distribute.MultiWorkerMirroredStrategy()


def _tpu(runtime, devices):  # pylint: disable=unused-argument
  if not runtime.tpu and not tf.config.list_physical_devices("TPU"):
    # Checked here so that a machine without a TPU never queries a metadata server.
    raise ConfigError("--runtime.strategy=tpu: no TPU found on this host (TensorFlow "
                      "lists no TPU device); run on a TPU VM with TensorFlow's TPU "
                      "support installed, or name a remote TPU with "
                      "--runtime.tpu=NAME or grpc://HOST:PORT")
  where = runtime.tpu or "this host"
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=runtime.tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, RuntimeError, tf.errors.OpError) as e:
    raise ConfigError(f"--runtime.strategy=tpu: no TPU found at {where} "
                      f"(--runtime.tpu={runtime.tpu!r}): {str(e).strip()[:300]}") from e
  return tf.distribute.TPUStrategy(resolver)


_STRATEGIES = {"default": _default, "mirrored": _mirrored, "auto": _auto,
               "multi_worker": _multi_worker, "tpu": _tpu}


def make_strategy(runtime):
  """The strategy `runtime` (a `RuntimeConfig`) asks for.

  * `default`: the default (no-op) strategy.
  * `mirrored`: MirroredStrategy over the GPUs, or over the logical CPU devices of
    `--runtime.cpu_devices`, or over the CPU.
  * `auto`: `mirrored` when there is more than one GPU or `cpu_devices` > 1, else
    `default`.
  * `multi_worker`: MultiWorkerMirroredStrategy over the cluster of `TF_CONFIG`;
    every worker runs the same command, worker 0 is the chief.
  * `tpu`: TPUStrategy on the TPU `--runtime.tpu` names.

  `cpu_devices` > 1 splits the CPU into logical devices, which exercises the
  distributed code path on a machine without accelerators. Must be called before
  TensorFlow runs anything else in the process (logical devices and the
  multi-worker collectives are set up once).

  Raises:
    ConfigError: `multi_worker` without a valid `TF_CONFIG`; `tpu` where no TPU is
      found.
  """
  devices = _split_cpu(runtime.cpu_devices) if runtime.cpu_devices > 1 else None
  return _STRATEGIES[runtime.strategy](runtime, devices)


def is_chief(strategy):
  """Whether this process writes the run's files (checkpoints, TensorBoard, exports,
  reports): every process except the non-chief workers of a multi-worker cluster
  (the 'chief' task, or worker 0 of a cluster without one)."""
  return bool(getattr(strategy.extended, "should_checkpoint", True))


def task_name(strategy):
  """'worker-N' of a multi-worker process, '' otherwise."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or resolver.task_type is None:
    return ""
  return f"{resolver.task_type}-{resolver.task_id}"
