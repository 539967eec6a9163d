"""The `tf.distribute` strategy a run uses (`--runtime.strategy`), and which task of
a cluster this process is (docs/design.md section 12.1).

Nothing here waits on the network silently or without bound: a TPU address (or, for
a TPU name, the metadata server that resolves it) must accept a connection within
`TPU_CONNECT_TIMEOUT_S`, and a cluster worker waits for the other tasks of its
`TF_CONFIG` at most `--runtime.cluster_timeout_s`, saying which ones it waits for;
Ctrl-C and SIGTERM end that wait at once.
"""

import json
import os
import signal
import socket
import sys
import threading
import time

import tensorflow as tf

from tf_stackelberg.common import reach
from tf_stackelberg.common.errors import ConfigError, NetworkError
from tf_stackelberg.console.interrupt import Interrupted

#: Seconds a TPU address, or the metadata server that resolves a TPU name, gets to
#: accept a TCP connection.
TPU_CONNECT_TIMEOUT_S = 10.0
#: The tasks of a cluster that MultiWorkerMirroredStrategy trains on.
CLUSTER_JOBS = ("chief", "worker")
# How often the wait for a cluster probes the missing tasks, and says which they are.
_PROBE_EVERY_S = 0.5
_REPORT_EVERY_S = 30.0
_TF_CONFIG_EXAMPLE = ('expected JSON like {"cluster": {"worker": ["host0:2222", '
                      '"host1:2222"]}, "task": {"type": "worker", "index": 0}}')


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


# ----------------------------------------------------------------- TF_CONFIG
def _tf_config_error(problem):
  return ConfigError(f"TF_CONFIG {problem}; {_TF_CONFIG_EXAMPLE}")


def _check_cluster(cluster):
  """Raises `ConfigError` unless `cluster` maps 'chief'/'worker' to lists of distinct
  'host:port' strings (at most one chief)."""
  if not isinstance(cluster, dict) or not cluster:
    raise _tf_config_error(f"'cluster' must be a non-empty object of job lists, got "
                           f"{json.dumps(cluster)}")
  seen = {}
  for job, addresses in cluster.items():
    if job not in CLUSTER_JOBS:
      raise _tf_config_error(
          f"names the job {job!r}, but --runtime.strategy=multi_worker runs "
          f"{' and '.join(repr(j) for j in CLUSTER_JOBS)} tasks only")
    if not isinstance(addresses, list) or not addresses:
      raise _tf_config_error(f"cluster.{job} must be a non-empty list of "
                             f'"host:port" strings, got {json.dumps(addresses)}')
    for i, address in enumerate(addresses):
      try:
        if not isinstance(address, str):
          raise ValueError(f"{json.dumps(address)} is not a string")
        reach.split_address(address)
      except ValueError as e:
        raise _tf_config_error(f"cluster.{job}[{i}]: {e}") from None
      if address in seen:
        raise _tf_config_error(f"cluster.{job}[{i}] and {seen[address]} are both "
                               f"{address}: every task needs its own address")
      seen[address] = f"cluster.{job}[{i}]"
  if len(cluster.get("chief", [])) > 1:
    raise _tf_config_error(f"cluster.chief lists {len(cluster['chief'])} addresses; "
                           "a cluster has at most one chief")


def _check_task(task, cluster):
  """Raises `ConfigError` unless `task` is {'type': a job of `cluster`, 'index': an
  integer below that job's number of addresses}; returns the index."""
  if not isinstance(task, dict) or "type" not in task or "index" not in task:
    raise _tf_config_error(f"'task' must be an object with 'type' and 'index', got "
                           f"{json.dumps(task)}")
  kind, index = task["type"], task["index"]
  if not isinstance(kind, str) or kind not in cluster:
    raise _tf_config_error(f"task type {json.dumps(kind)} is not a job of its "
                           f"cluster ({', '.join(cluster)})")
  if isinstance(index, str) and index.strip().isdigit():
    index = int(index)  # TensorFlow's own resolver accepts "1" too
  if isinstance(index, bool) or not isinstance(index, int):
    raise _tf_config_error(f"task index {json.dumps(index)} is not an integer")
  if not 0 <= index < len(cluster[kind]):
    raise ConfigError(f"TF_CONFIG task index {index} is not one of the "
                      f"{len(cluster[kind])} {kind} addresses of its cluster "
                      f"(0 to {len(cluster[kind]) - 1})")
  return index


def cluster_spec():
  """The parsed `TF_CONFIG` (`{'cluster': ..., 'task': ...}`), or None without one.

  The whole structure is checked, so that TensorFlow never meets a malformed one:
  `cluster` maps 'chief' and/or 'worker' to non-empty lists of distinct "host:port"
  strings (at most one chief), and `task` names one of them by type and index.

  Raises:
    ConfigError: `TF_CONFIG` is not JSON or breaks one of these rules; the message
      says which part and what is expected.
  """
  text = os.environ.get("TF_CONFIG", "").strip()
  if not text:
    return None
  try:
    spec = json.loads(text)
  except ValueError as e:
    raise _tf_config_error(f"is not JSON ({e})") from None
  if not isinstance(spec, dict) or "cluster" not in spec or "task" not in spec:
    raise _tf_config_error("is not a cluster description with a task (it needs "
                           "'cluster' and 'task')")
  _check_cluster(spec["cluster"])
  index = _check_task(spec["task"], spec["cluster"])
  return {**spec, "task": {**spec["task"], "index": index}}


def cluster_tasks(spec):
  """[(name, address)] of the tasks of `spec` that train, e.g. ('worker 1',
  'host1:2222'), chief first."""
  return [(f"{job} {i}", address) for job in CLUSTER_JOBS
          for i, address in enumerate(spec["cluster"].get(job, []))]


class _Terminated(Exception):
  """SIGTERM arrived while this process waited for the cluster."""


def _raise_terminated(signum, frame):  # pylint: disable=unused-argument
  raise _Terminated()


def _listen(port):
  """A socket listening on `port` of every interface, as the task's TensorFlow
  server will; the other tasks see this one as started while it waits for them."""
  if socket.has_dualstack_ipv6():
    return socket.create_server(("", port), family=socket.AF_INET6,
                                dualstack_ipv6=True)
  return socket.create_server(("", port))


def wait_for_cluster(spec, timeout_s, stream=None):
  """Returns once every other task of `spec` (a `cluster_spec()`) accepts a TCP
  connection at its address.

  MultiWorkerMirroredStrategy waits for the whole cluster inside TensorFlow, holding
  the interpreter: without a word, without a bound, and deaf to SIGTERM. This wait
  comes first, in Python. The task listens on its own port meanwhile (a task that
  waits counts as started for the others), prints which tasks it waits for, probes
  the missing ones every half second, and gives up after `timeout_s`.

  Raises:
    NetworkError: a task did not answer within `timeout_s`, or this task's port is
      taken on this host.
    Interrupted: Ctrl-C or SIGTERM during the wait (nothing was written).
  """
  stream = stream or sys.stderr
  task = spec["task"]
  own_name = f"{task['type']} {task['index']}"
  tasks = cluster_tasks(spec)
  own_address = dict(tasks)[own_name]
  missing = [(name, address) for name, address in tasks if name != own_name]
  if not missing:
    return
  try:
    listener = _listen(reach.split_address(own_address)[1])
  except OSError as e:
    reason = os.strerror(e.errno) if e.errno else str(e)
    raise NetworkError(
        f"TF_CONFIG: the address of this task ({own_name}, {own_address}) cannot be "
        f"used on this host ({reason}); stop the process that holds its port or give "
        "this task another one") from None
  listener.setblocking(False)
  start = time.monotonic()
  previous = None
  try:
    if threading.current_thread() is threading.main_thread():
      previous = signal.signal(signal.SIGTERM, _raise_terminated)
    print(f"Waiting up to {timeout_s:g} s (--runtime.cluster_timeout_s) for "
          f"{_listed(missing)} to start ({own_name} of the cluster in TF_CONFIG) ...",
          file=stream, flush=True)
    last_report = start
    while True:
      _accept_all(listener)
      reasons = {name: reach.probe(*reach.split_address(address),
                                   min(_PROBE_EVERY_S * 2, timeout_s))
                 for name, address in missing}
      missing = [(n, a) for n, a in missing if reasons[n]]
      elapsed = time.monotonic() - start
      if not missing:
        print(f"Every task of the cluster answered after {elapsed:.1f} s; "
              "connecting ...", file=stream, flush=True)
        return
      if elapsed >= timeout_s:
        raise NetworkError(
            f"TF_CONFIG: {_listed(missing, reasons)} did not start within "
            f"{timeout_s:g} s (--runtime.cluster_timeout_s); start the same command "
            "with its own TF_CONFIG task on every task of the cluster, or allow "
            "more time with --runtime.cluster_timeout_s")
      if time.monotonic() - last_report >= _REPORT_EVERY_S:
        last_report = time.monotonic()
        print(f"Still waiting for {_listed(missing)} ({elapsed:.0f} s of "
              f"{timeout_s:g} s) ...", file=stream, flush=True)
      time.sleep(max(0.0, min(_PROBE_EVERY_S, start + timeout_s - time.monotonic())))
  except (_Terminated, KeyboardInterrupt) as e:
    what = "SIGTERM" if isinstance(e, _Terminated) else "Ctrl-C"
    raise Interrupted(f"stopped by {what} after {time.monotonic() - start:.1f} s of "
                      f"waiting for {_listed(missing)}; nothing was written") from None
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
    listener.close()


def _accept_all(listener):
  """Accepts and resets the probes of the other tasks (none is held open)."""
  while True:
    try:
      connection, _ = listener.accept()
    except (BlockingIOError, InterruptedError):
      return
    reach.close_at_once(connection)


def _listed(tasks, reasons=None):
  """'worker 1 at host1:2222 (why)' for each of `tasks`, joined."""
  return ", ".join(f"{name} at {address}" + (f" ({reasons[name]})" if reasons else "")
                   for name, address in tasks)


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
  wait_for_cluster(spec, runtime.cluster_timeout_s)
  on_main_thread = threading.current_thread() is threading.main_thread()
  previous = signal.getsignal(signal.SIGTERM) if on_main_thread else None
  # Collectives over gRPC between the workers; the devices are each worker's GPUs,
  # or its CPU.
  strategy = tf.distribute.MultiWorkerMirroredStrategy()
  if previous is not None:
    # TensorFlow's coordination service installs a SIGTERM handler that only logs
    # the signal; a worker stops on SIGTERM as a single process does.
    signal.signal(signal.SIGTERM, previous)
  return strategy


def _metadata_address():
  """(host, port) of the Google Cloud metadata server that TPUClusterResolver asks
  for the project and zone of a TPU name (its own environment overrides)."""
  endpoint = (os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_IP")
              or "metadata.google.internal")
  try:
    return reach.split_address(endpoint)
  except ValueError:
    return endpoint, 80


def _check_tpu_reachable(tpu):
  """Raises unless what `--runtime.tpu` names can be reached within
  `TPU_CONNECT_TIMEOUT_S` (TensorFlow would wait minutes, or fail with a
  traceback)."""
  timeout = TPU_CONNECT_TIMEOUT_S
  start = time.monotonic()
  if tpu.startswith("grpc://"):
    host, port = reach.split_address(tpu[len("grpc://"):])
    print(f"Connecting to the TPU at {host}:{port} (--runtime.tpu, at most "
          f"{timeout:g} s) ...", file=sys.stderr, flush=True)
    reason = reach.probe(host, port, timeout)
    if reason:
      raise NetworkError(
          f"--runtime.tpu={tpu}: no TPU answers at {host}:{port} ({reason}; tried "
          f"for {time.monotonic() - start:.1f} s of at most {timeout:g} s); check "
          "that the TPU is running and that its address and port (usually 8470) "
          "are right")
    return
  host, port = _metadata_address()
  print(f"Looking up the TPU named {tpu!r} through the Google Cloud metadata server "
        f"at {host}:{port} (--runtime.tpu, at most {timeout:g} s) ...",
        file=sys.stderr, flush=True)
  reason = reach.probe(host, port, timeout)
  if reason:
    raise NetworkError(
        f"--runtime.tpu={tpu}: a TPU name is looked up through the Google Cloud "
        f"metadata server at {host}:{port}, which does not answer from this host "
        f"({reason}; tried for {time.monotonic() - start:.1f} s); run on a Google "
        "Cloud VM in the TPU's project and zone, or give the TPU's address as "
        "--runtime.tpu=grpc://HOST:8470")
  try:
    import googleapiclient  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    raise ConfigError(
        f"--runtime.tpu={tpu}: looking up a TPU name needs the package "
        "google-api-python-client, which is not installed (pip install "
        "google-api-python-client); or give the TPU's address as "
        "--runtime.tpu=grpc://HOST:8470") from None


def _tpu(runtime, devices):  # pylint: disable=unused-argument
  if not runtime.tpu and not tf.config.list_physical_devices("TPU"):
    # Checked here so that a machine without a TPU never queries a metadata server.
    raise ConfigError("--runtime.strategy=tpu: no TPU found on this host (TensorFlow "
                      "lists no TPU device); run on a TPU VM with TensorFlow's TPU "
                      "support installed, or name a remote TPU with "
                      "--runtime.tpu=NAME or grpc://HOST:PORT")
  if runtime.tpu and runtime.tpu != "local":
    _check_tpu_reachable(runtime.tpu)
  where = runtime.tpu or "this host"
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=runtime.tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except OSError as e:  # the metadata server or the TPU API stopped answering
    raise NetworkError(f"--runtime.strategy=tpu: the TPU {where} could not be "
                       f"reached (--runtime.tpu={runtime.tpu!r}): "
                       f"{str(e).strip()[:300]}") from e
  except (ValueError, RuntimeError, ImportError, tf.errors.OpError) as e:
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
    NetworkError: the other tasks of the cluster did not start within
      `--runtime.cluster_timeout_s`; the TPU (or the metadata server resolving its
      name) did not answer within `TPU_CONNECT_TIMEOUT_S`.
    Interrupted: Ctrl-C or SIGTERM while waiting for the cluster.
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
