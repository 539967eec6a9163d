r"""Training and sampling throughput across the scale-out settings, in one table.

Rows are model families, columns the settings a run can scale out with; every cell
is one fresh process (logical CPU devices and multi-worker clusters must be set up
before TensorFlow starts), launched by this script, which collects the cells' JSON
and prints one Markdown table, then a projection of configs/cifar10.cfg onto an
8-GPU host and a TPU v4-8.

Rows:
  mog         configs/mog_ring.cfg: 8 MLP generators 2-32-2, D 2-512-256, batch 64.
  mnist       configs/mnist.cfg: 10 MLP generators 100-128-512-784, batch 100.
  cifar       configs/cifar10_quick.cfg: 10 DCGAN generators at a quarter of the
              widths of configs/cifar10.cfg (the size that trains on this CPU).
  cifar_full  configs/cifar10.cfg itself (only with --cifar_full or --families).
  sampling    `sample_latents` with `--sampler` (rep: MALA) on the mog_ring.cfg GAN,
              freshly initialised (a sampler step costs the same whatever the
              weights), or on the trained run of `--model_dir`: N chains x S steps.

Columns (training families: optimisation steps per second; sampling: chain-steps
per second, i.e. chains x transitions per second):
  replicas1   MirroredStrategy over the one CPU device, one step per call (what
              `Run` sets with several replicas), the config's XLA setting (one
              replica: the whole step compiled).
  replicas2   MirroredStrategy over 2 logical CPU devices (--runtime.cpu_devices=2);
              each replica computes half the global batch (the sampler: half the
              chains); the gradients are all-reduced every step. With the config's
              --runtime.jit_compile=true, `Run` compiles each replica's forward and
              backward pass and applies the gradients outside (the sharded sampler
              runs uncompiled).
  workers1    MultiWorkerMirroredStrategy, a cluster of one worker (TF_CONFIG), one
              step per call, the config's XLA setting.
  workers2    two worker processes on loopback ports, one replica each, half the
              global batch each, gradients all-reduced over gRPC; worker 0's timing.
              Not for sampling: chains are sharded only over the replicas of one
              process, so every worker would sample all chains itself.
  xla_on      default strategy, one device, --runtime.jit_compile=true, the
  xla_off     config's steps per call (gcd with the timed round length, as the
              trainer does) / the same uncompiled.
  float32     default strategy, one device, the config's own XLA setting, in
  mixed_bfloat16  --runtime.precision float32, mixed_bfloat16 or mixed_float16
  mixed_float16   (with loss scaling). A CPU without float16 arithmetic
              (AVX512-FP16) converts instead: the figure is not float16 compute.
A column whose settings are those of an earlier column of the same row (e.g. float32
and xla_on for a config that compiles) is measured once and shown in both.

On this machine replicas and workers share the same 2 cores: the columns measure what
the distributed code path costs (smaller per-replica batches, all-reduce, XLA of each
replica's gradients only, one step per call), not a speed-up.

How a cell is timed. Training: one `fit` of 1 + rounds epochs of `round_steps` steps
each on the family's real input pipeline (`training_batches`); the first epoch
absorbs tracing, compilation and the first executions and is not counted; the figure
is the fastest of the timed epochs (steps / wall seconds), the slowest is kept in the
JSON with the process's CPU seconds per step of every epoch (on a shared machine
the wall figure moves with the cores other jobs leave free; CPU seconds much less).
Sampling: `sample_latents` in chunks of `chunk_steps`; the first chunk (which traces
and compiles) is dropped; the figure is the fastest of the later chunks. The same
number of steps is timed in every column of a row. The default run takes about 20
minutes on 2 shared cores, --quick about 2.

Every cell prints in brackets its ratio to the row's first measured column. Under the
table: the ratio of each pair of columns, failed cells with their error, then the
projection (`projection`): FLOPs of one step of configs/cifar10.cfg counted from its
traced graph (tools/profile_train_step.py), its parameters, the bytes all-reduced
per step, the memory per replica and an estimated step time: the fraction of a
dense matrix product's rate (GFLOP per CPU second) that the cifar row reached here,
applied to published peak figures (assumptions, named in the output).

Usage (from the repository root; nice, the machine is shared):
  nice -n 10 python tools/benchmark_scaling.py --json=/tmp/scaling.json
  python tools/benchmark_scaling.py --quick       # the mog row, about two minutes
  python tools/benchmark_scaling.py --quick --families=mog,sampling
  python tools/benchmark_scaling.py --families=mog --columns=replicas1,replicas2
"""

import argparse
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(REPO, "tools")
# Run against the checkout this file belongs to, installed or not.
sys.path.insert(0, REPO)

from tf_stackelberg.common.machine import cpu_info, cpu_line  # pylint: disable=wrong-import-position

# ----------------------------------------------------------------- what is measured
# round_steps / rounds: steps of each timed epoch (sampling: chunk steps) and how
# many are timed; the full setting keeps the whole default run near 20 minutes on 2
# loaded cores, --quick is a smoke test.
FAMILIES = {
    "mog": dict(label="MoG ring (mog_ring.cfg)", flagfile="configs/mog_ring.cfg",
                kind="train", full=dict(round_steps=200, rounds=3),
                quick=dict(round_steps=50, rounds=2)),
    "mnist": dict(label="MNIST MLP (mnist.cfg)", flagfile="configs/mnist.cfg",
                  kind="train", full=dict(round_steps=50, rounds=3),
                  quick=dict(round_steps=10, rounds=2)),
    "cifar": dict(label="CIFAR DCGAN (cifar10_quick.cfg)",
                  flagfile="configs/cifar10_quick.cfg", kind="train",
                  full=dict(round_steps=5, rounds=3),
                  quick=dict(round_steps=1, rounds=2)),
    "cifar_full": dict(label="CIFAR DCGAN (cifar10.cfg)",
                       flagfile="configs/cifar10.cfg", kind="train",
                       full=dict(round_steps=1, rounds=3),
                       quick=dict(round_steps=1, rounds=2)),
    "sampling": dict(label="latent sampling (mog_ring.cfg GAN)",
                     flagfile="configs/mog_ring.cfg", kind="sample",
                     full=dict(round_steps=20, rounds=5, chains=2000),
                     quick=dict(round_steps=10, rounds=2, chains=500)),
}
DEFAULT_FAMILIES = ("mog", "mnist", "cifar", "sampling")
QUICK_FAMILIES = ("mog",)

# Settings of each column: --runtime.* values, the number of worker processes, and
# whether it runs one step per call (what `Run` sets with several replicas).
COLUMNS = {
    "replicas1": dict(label="replicas 1", runtime=dict(strategy="mirrored"),
                      single_step=True),
    "replicas2": dict(label="replicas 2", runtime=dict(strategy="mirrored",
                                                       cpu_devices=2),
                      single_step=True),
    "workers1": dict(label="workers 1", runtime=dict(strategy="multi_worker"),
                     workers=1, single_step=True),
    "workers2": dict(label="workers 2", runtime=dict(strategy="multi_worker"),
                     workers=2, single_step=True),
    "xla_on": dict(label="XLA on", runtime=dict(strategy="default", jit_compile=True)),
    "xla_off": dict(label="XLA off", runtime=dict(strategy="default",
                                                  jit_compile=False)),
    "float32": dict(label="float32", runtime=dict(strategy="default",
                                                  precision="float32")),
    "mixed_bfloat16": dict(label="mixed_bfloat16",
                           runtime=dict(strategy="default",
                                        precision="mixed_bfloat16")),
    "mixed_float16": dict(label="mixed_float16",
                          runtime=dict(strategy="default", precision="mixed_float16")),
}
DEFAULT_COLUMNS = tuple(COLUMNS)
# Pairs whose ratio is printed under the table (second over first).
PAIRS = (("replicas1", "replicas2"), ("workers1", "workers2"), ("xla_off", "xla_on"),
         ("float32", "mixed_bfloat16"), ("float32", "mixed_float16"))
_ONE_PROCESS = "chains are sharded over the replicas of one process only"
NOT_APPLICABLE = {("sampling", "workers1"): _ONE_PROCESS,
                  ("sampling", "workers2"): _ONE_PROCESS}

# The family whose config the projection is about (counted with the training rows).
PROJECTED = "cifar_full"

# ----------------------------------------------------------------- public figures
# Peak figures are the vendors' published specifications; everything else in a
# device entry is an assumption of the projection and is printed as such.
HARDWARE = (
    dict(name="8x NVIDIA A100 (SXM, 40 GB)", replicas=8,
         # (label, peak TFLOP/s, precision whose measured fraction applies, bytes per
         # activation element)
         precisions=(("float32", 19.5, "float32", 4),
                     ("float32 as TF32 (TF's default on A100)", 156.0, "float32", 4),
                     ("mixed_bfloat16", 312.0, "mixed_bfloat16", 2)),
         hbm_gbps=1555.0, memory_gib=40.0, link_gbps=300.0,
         per_op_overhead_us=5.0,
         source="NVIDIA A100 datasheet: FP32 19.5, TF32 tensor 156, BF16 tensor 312 "
                "TFLOP/s (dense); HBM2 1,555 GB/s (80 GB part: 2,039 GB/s); NVLink "
                "600 GB/s total, 300 GB/s per direction",
         notes="5 us of host time per op dispatched (one kernel launch each)"),
    dict(name="TPU v4-8 (4 chips)", replicas=4,
         precisions=(("float32 (bf16 passes)", 275.0, "mixed_bfloat16", 4),
                     ("mixed_bfloat16", 275.0, "mixed_bfloat16", 2)),
         hbm_gbps=1200.0, memory_gib=32.0, link_gbps=50.0,
         per_op_overhead_us=0.0,
         source="Cloud TPU v4 documentation: 275 TFLOP/s bf16 per chip, 32 GiB HBM2 "
                "at 1,200 GB/s per chip",
         notes="the ring all-reduce runs at one ICI link's ~50 GB/s per direction "
               "(400 Gb/s per link, as TPU v4 is publicly described; no documented "
               "figure for a v4-8); TPUStrategy compiles the whole step, so no per-op "
               "overhead; float32 matmuls and convolutions run as single bf16 passes "
               "(TF's default precision on TPU), so float32 gets the bf16 peak and "
               "the bf16 efficiency"),
)
# Bytes of memory traffic per parameter and step besides the activations: read the
# weight twice (forward, backward), write and read its gradient, read and write both
# Adam slots, write the weight (float32 each). An estimate.
PARAM_TRAFFIC_BYTES = 4 * 9
# Activations are written in the forward pass, read in the backward pass and their
# gradient written once: about three passes over them.
ACTIVATION_PASSES = 3

# Data sets whose default evaluators cost nothing to build.
MIXTURES = ("ring", "grid")


# ================================================================== child side
def _quiet_tensorflow():
  from tf_stackelberg.console import startup  # pylint: disable=import-outside-toplevel
  return startup.import_tensorflow_quietly()


def load_config(flagfile, overrides=None, model_dir=None):
  """The `Config` of a flagfile with `overrides` (flag names -> values), parsed with
  the command line's own flags into a private flag set."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.config import flags as config_flags  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training import run_settings  # pylint: disable=import-outside-toplevel
  if model_dir:  # a trained run: its own settings
    config = run_settings.read_resolved(model_dir).replace(model_dir=model_dir)
  else:
    values = flags.FlagValues()
    config_flags.define_flags(values)
    values(["benchmark_scaling", f"--flagfile={flagfile}"])
    config = config_flags.config_from_flags(values)
  return config.replace(**(overrides or {}))


def _cell_config(spec, tmp_dir):
  """The config of one cell: the family's, the column's runtime, cheap evaluators."""
  family, column = FAMILIES[spec["family"]], COLUMNS[spec["column"]]
  base = load_config(os.path.join(REPO, family["flagfile"]),
                     model_dir=spec.get("model_dir"))
  overrides = {"mode": "train"}
  if base.data.dataset not in MIXTURES:  # not the classifier evaluator: nothing to load
    overrides["eval.evaluators"] = ("samples",)
  if not spec.get("model_dir"):
    overrides["model_dir"] = tmp_dir
  overrides.update({f"runtime.{k}": v for k, v in column["runtime"].items()})
  if column.get("single_step"):
    overrides["trainer.steps_per_execution"] = 1
  else:
    # Whole blocks of calls fill a round, as the trainer does with its intervals.
    overrides["trainer.steps_per_execution"] = math.gcd(
        spec["round_steps"], base.trainer.steps_per_execution)
  return base.replace(**overrides)


def _machine_state():
  return {"loadavg": os.getloadavg()[0], "time": time.time()}


def _train_cell(spec, config, strategy):
  """Steps/s of `fit` on the family's batches (fastest timed epoch)."""
  import keras  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training.input import training_batches  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training.run import Run  # pylint: disable=import-outside-toplevel

  class EpochClock(keras.callbacks.Callback):
    """Wall and process CPU seconds of every epoch."""

    def __init__(self):
      super().__init__()
      self.epochs, self._start = [], None

    def on_epoch_begin(self, epoch, logs=None):
      self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
      # Keras has read the epoch's metrics by now: the steps have run.
      self.epochs.append((time.perf_counter() - self._start[0],
                          time.process_time() - self._start[1]))

  start = time.perf_counter()
  run = Run(config, strategy)
  config, gan = run.config, run.gan
  steps, rounds = spec["round_steps"], spec["rounds"]
  if steps % gan.steps_per_execution:
    raise ValueError(f"{steps} steps per round do not split into calls of "
                     f"{gan.steps_per_execution}")
  total = steps * (rounds + 1)
  data = training_batches(strategy, run.data, config.game.batch_size, config.seed, 0,
                          total)
  setup_seconds = time.perf_counter() - start
  clock = EpochClock()
  gan.fit(data, epochs=rounds + 1, steps_per_epoch=steps, callbacks=[clock],
          shuffle=False, verbose=0)
  if int(gan.step.numpy()) != total:
    raise RuntimeError(f"fit ran {int(gan.step.numpy())} steps, expected {total}")
  timed = clock.epochs[1:]
  return dict(unit="steps/s", rates=[steps / wall for wall, _ in timed],
              cpu_ms_per_step=[1000 * cpu / steps for _, cpu in timed],
              warmup_seconds=clock.epochs[0][0], setup_seconds=setup_seconds,
              timed_steps=steps * rounds, jit_compile=bool(gan.jit_compile),
              replica_jit_compile=bool(getattr(gan, "replica_jit_compile", False)),
              steps_per_execution=int(gan.steps_per_execution),
              batch_size=config.game.batch_size,
              per_replica_batch=config.game.batch_size // strategy.num_replicas_in_sync)


def _sampling_cell(spec, config, strategy):
  """Chain-steps/s of `sample_latents` (fastest chunk after the compiled first)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.common.salts import SAMPLING as SAMPLING_SALT  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.sampling.sample import sample_latents  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.app import latent  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training.run import Run  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, TOOLS)
  from benchmark_image_sampling import ChunkClock, phase_starts  # pylint: disable=import-outside-toplevel,import-error

  start = time.perf_counter()
  run = Run(config, strategy)
  if spec.get("model_dir"):
    run.restore(require=True, repair=False)
  model = latent.latent_model(run.gan)
  settings = latent.sampler_settings(run.config.sampling)
  chains, chunk = spec["chains"], spec["round_steps"]
  steps = chunk * (spec["rounds"] + 1)
  clock = ChunkClock(phase_starts(spec["sampler"], steps, settings))
  setup_seconds = time.perf_counter() - start
  clock.begin()
  sample_latents(spec["sampler"], model, chains, steps,
                 tf.constant([config.seed, SAMPLING_SALT], tf.int32), settings,
                 chunk_steps=chunk,
                 progress_callback=clock, jit_compile=run.config.runtime.jit_compile,
                 strategy=strategy)
  first, steady = clock.split_chunks()
  if not steady:
    raise RuntimeError(f"no chunk ran after the compiled ones ({len(first)} chunks)")
  return dict(unit="chain-steps/s",
              rates=[chains * n / seconds for _, n, seconds in steady],
              warmup_seconds=sum(seconds for _, _, seconds in first),
              setup_seconds=setup_seconds, timed_steps=sum(n for _, n, _ in steady),
              chains=chains, sampler=spec["sampler"],
              jit_compile=bool(run.config.runtime.jit_compile),
              per_replica_chains=-(-chains // strategy.num_replicas_in_sync))


def run_cell(spec):
  """One cell in this (fresh) process; returns its result dict."""
  tf = _quiet_tensorflow()
  import keras  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training.run import seed_everything  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training.strategy import make_strategy, task_name  # pylint: disable=import-outside-toplevel
  before = _machine_state()
  with tempfile.TemporaryDirectory(prefix="benchmark_scaling_") as tmp_dir:
    config = _cell_config(spec, tmp_dir)
    strategy = make_strategy(config.runtime)
    config = config.validate(strategy.num_replicas_in_sync)
    seed_everything(config)
    sample = FAMILIES[spec["family"]]["kind"] == "sample"
    measure = _sampling_cell if sample else _train_cell
    result = measure(spec, config, strategy)
  rates = result["rates"]
  result.update(rate=max(rates), worst_rate=min(rates),
                replicas=strategy.num_replicas_in_sync,
                strategy=type(strategy).__name__, task=task_name(strategy) or "",
                precision=config.runtime.precision, tensorflow=tf.__version__,
                keras=keras.__version__, loadavg_start=before["loadavg"],
                loadavg_end=os.getloadavg()[0],
                seconds=time.time() - before["time"])
  return result


# ------------------------------------------------------------- model accounting
# Forward ops whose outputs are layer activations (for counting what a step keeps).
_NOT_ACTIVATIONS = ("Const", "ReadVariableOp", "Placeholder", "VarHandleOp", "AddN",
                    "Identity")
_NO_KERNEL = ("Const", "Placeholder", "NoOp")


def _is_gradient(op):
  return "gradient_tape" in op.name


def saved_activations(ops):
  """Elements of the forward tensors each update's gradients read, by update.

  Every variable-update op group (by its top-level name scope, e.g. `adam` and
  `adam_1`: one per player) is followed back through the gradient ops it depends
  on; the forward tensors those gradient ops read (not weights or constants) are
  what back-propagation keeps alive for that update. Returns {scope: elements}.
  """
  by_name = {op.name: op for op in ops}
  updates = {}
  for op in ops:
    if op.type.startswith(("Assign", "ResourceApply")) and "/" in op.name:
      updates.setdefault(op.name.split("/")[0], []).append(op)
  out = {}
  for scope, roots in updates.items():
    seen, pending, saved = set(), list(roots), {}
    while pending:
      op = pending.pop()
      if op.name in seen or op.name not in by_name:
        continue
      seen.add(op.name)
      for tensor in op.inputs:
        producer = tensor.op
        if (_is_gradient(op) and not _is_gradient(producer)
            and producer.type not in _NOT_ACTIVATIONS and tensor.dtype.is_floating
            and tensor.shape.is_fully_defined() and tensor.shape.rank):
          saved[tensor.name] = tensor.shape.num_elements()
        pending.append(producer)
    if saved:
      out[scope] = sum(saved.values())
  return out


def count_model(config, data_shape):
  """FLOPs, parameters, saved activations and ops of one training step of `config`
  (float32, one device), from its traced train step."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.game.builder import build_gan  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, TOOLS)
  import profile_train_step as profile  # pylint: disable=import-outside-toplevel,import-error
  config = config.replace(**{"runtime.jit_compile": False,
                             "runtime.precision": "float32",
                             "trainer.steps_per_execution": 1})
  gan = build_gan(config, data_shape)
  batch = config.game.batch_size
  graph = profile.train_step_graph(gan, tf.zeros([batch, *data_shape]))
  ops = profile.step_ops(graph)
  macs = profile.count_macs(graph)

  def size(variables):
    return int(sum(v.shape.num_elements() for v in variables))
  # Update ops are named in their optimizer's scope.
  players = {gan.g_optimizer.name: "generator update",
             gan.d_optimizer.name: "discriminator update"}
  saved = {players.get(scope, scope): n for scope, n in saved_activations(ops).items()}
  kernels = [op for op in ops if op.type not in _NO_KERNEL]
  return dict(batch_size=batch, gflop_per_step=2 * macs["total"] / 1e9,
              params_generator=size(gan.generator.trainable_variables),
              params_discriminator=size(gan.discriminator.trainable_variables),
              params_non_trainable=size(gan.generator.non_trainable_variables
                                        + gan.discriminator.non_trainable_variables),
              saved_activation_elements=saved, ops_per_step=len(kernels),
              # What stays outside XLA when each replica's gradients are compiled.
              optimizer_ops_per_step=sum(op.name.split("/")[0] in players
                                         for op in kernels))


def matmul_gflops(dtype_name, size, repeats):
  """{'wall': GFLOP/s, 'cpu': GFLOP per CPU second} of a [size, size] x [size, size]
  matrix product on this CPU (fastest of `repeats` each): the dense rate a step's
  efficiency is measured against. Per CPU second, the rate does not depend on how
  many cores other jobs leave free at the moment."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  a = tf.cast(tf.random.stateless_normal([size, size], [1, 2]), getattr(tf, dtype_name))
  product = tf.function(lambda x: tf.matmul(x, x))
  product(a).numpy()
  wall = cpu = float("inf")
  for _ in range(repeats):
    start, cpu_start = time.perf_counter(), time.process_time()
    product(a).numpy()
    wall = min(wall, time.perf_counter() - start)
    cpu = min(cpu, time.process_time() - cpu_start)
  flop = 2 * size ** 3 / 1e9
  return {"wall": flop / wall, "cpu": flop / cpu}


def run_counts(spec):
  """The model counts of the families `spec['families']` and this CPU's matmul
  rates (one process: nothing here depends on devices)."""
  _quiet_tensorflow()
  from tf_stackelberg.data.registry import DATASETS  # pylint: disable=import-outside-toplevel
  models = {}
  for name in spec["families"]:
    config = load_config(os.path.join(REPO, FAMILIES[name]["flagfile"]))
    data = DATASETS.get(config.data.dataset)(config.data)
    models[name] = count_model(config.replace(model_dir="unused"), data.element_shape)
  size, repeats = spec["matmul_size"], spec["matmul_repeats"]
  rates = {"float32": matmul_gflops("float32", size, repeats),
           "mixed_bfloat16": matmul_gflops("bfloat16", size, repeats)}
  return dict(models=models, matmul_gflops=rates, matmul_size=size)


def child_main(spec_text):
  spec = json.loads(spec_text)
  from tf_stackelberg.common import files  # pylint: disable=import-outside-toplevel
  result = run_counts(spec) if spec.get("counts") else run_cell(spec)
  files.write_json(spec["out"], result)


# ================================================================== parent side
def _free_ports(count):
  """`count` loopback ports free at this moment (the system picks them; all are held
  until every one is picked, so they differ)."""
  with contextlib.ExitStack() as stack:
    sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
    for sock in sockets:
      sock.bind(("localhost", 0))
    return [sock.getsockname()[1] for sock in sockets]


def _tail(path, lines=12):
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      text = f.read().strip().splitlines()
  except OSError:
    return ""
  return "\n".join(text[-lines:])


def _error_line(log):
  """The most telling line of a failed child's log (the last error-like one)."""
  lines = [l for l in _tail(log, 60).splitlines() if l.strip()]
  for line in reversed(lines):
    if any(word in line for word in ("Error", "error:", "Exception")):
      return line.strip()[:300]
  return lines[-1].strip()[:300] if lines else "no output"


def launch(spec, work_dir, tag, timeout, workers=0):
  """Runs a child (or a cluster of `workers` children) on `spec`; returns the result
  of the child (worker 0), or {'error': ...}."""
  procs, outs, logs = [], [], []
  addresses = [f"localhost:{p}" for p in _free_ports(workers)] if workers else []
  for index in range(max(1, workers)):
    out = os.path.join(work_dir, f"{tag}_{index}.json")
    log = os.path.join(work_dir, f"{tag}_{index}.log")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    if workers:
      env["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                     "task": {"type": "worker", "index": index}})
    with open(log, "w", encoding="utf-8") as f:
      procs.append(subprocess.Popen(
          [sys.executable, os.path.abspath(__file__), "--child",
           json.dumps(dict(spec, out=out))], cwd=REPO, env=env, stdout=f,
          stderr=subprocess.STDOUT))
    outs.append(out)
    logs.append(log)
  deadline = time.monotonic() + timeout
  error = None
  # Polled together: a worker whose peer failed would wait for it until the timeout.
  while error is None and any(proc.poll() is None for proc in procs):
    if time.monotonic() > deadline:
      error = f"timed out after {timeout:.0f} s"
    time.sleep(0.2)
    for proc, log in zip(procs, logs):
      if error is None and proc.poll():
        error = f"exit {proc.returncode}: {_error_line(log)}"
  for proc, log in zip(procs, logs):
    if error is None and proc.returncode:
      error = f"exit {proc.returncode}: {_error_line(log)}"
  for proc in procs:  # only the processes started here
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  missing = [log for out, log in zip(outs, logs) if not os.path.exists(out)]
  if error is None and missing:
    error = f"no result written: {_error_line(missing[0])}"
  if error is not None:
    return {"error": error, "log": _tail(logs[0], 30)}
  results = []
  for out in outs:
    with open(out, encoding="utf-8") as f:
      results.append(json.load(f))
  if len(results) > 1:  # the other workers ran the same steps in lockstep
    results[0]["other_worker_rates"] = [r["rate"] for r in results[1:]]
  return results[0]


def cell_key(family, column, spec_settings):
  """What makes two cells of a row the same measurement: their effective settings."""
  settings = dict(COLUMNS[column]["runtime"])
  settings.setdefault("strategy", "default")
  settings["workers"] = COLUMNS[column].get("workers", 0)
  settings["single_step"] = bool(COLUMNS[column].get("single_step"))
  for name, value in spec_settings.items():
    settings.setdefault(name, value)
  return family, tuple(sorted(settings.items()))


def plan_cells(families, columns, defaults):
  """(family, column, key) of every cell in table order; `defaults` maps a family to
  its config's own runtime settings (jit_compile, precision), which fill in what a
  column leaves unset."""
  cells = []
  for family in families:
    for column in columns:
      if (family, column) in NOT_APPLICABLE:
        cells.append((family, column, None))
      else:
        cells.append((family, column, cell_key(family, column, defaults[family])))
  return cells


def _config_runtime(family, model_dir):
  """The family config's jit_compile and precision, read without TensorFlow."""
  if model_dir and FAMILIES[family]["kind"] == "sample":
    with open(os.path.join(model_dir, "flags.json"), encoding="utf-8") as f:
      runtime = json.load(f).get("runtime", {})
    return {"jit_compile": runtime.get("jit_compile", True),
            "precision": runtime.get("precision", "float32")}
  values = {"jit_compile": True, "precision": "float32"}

  def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
      for line in f:
        line = line.strip()
        if line.startswith("--flagfile="):
          read(line.split("=", 1)[1])
        elif line.startswith("--runtime.jit_compile="):
          values["jit_compile"] = line.split("=", 1)[1].lower() in ("true", "1")
        elif line.startswith("--runtime.precision="):
          values["precision"] = line.split("=", 1)[1]
  read(FAMILIES[family]["flagfile"])
  return values


def run_benchmark(families, columns, quick=False, sampler="rep", model_dir=None,
                  timeout=1200, counts=True, log=print):
  """Runs every cell (each in fresh processes) and the model counts; returns the
  report dict (cells by family and column, counts, settings)."""
  mode = "quick" if quick else "full"
  defaults = {f: _config_runtime(f, model_dir) for f in families}
  plan = plan_cells(families, columns, defaults)
  measured, cells = {}, {f: {} for f in families}
  with tempfile.TemporaryDirectory(prefix="benchmark_scaling_") as work_dir:
    report = {"counts": None}
    if counts:
      count_families = sorted({f for f in families if FAMILIES[f]["kind"] == "train"}
                              | {PROJECTED, "cifar"})
      start = time.perf_counter()
      report["counts"] = launch(
          {"counts": True, "families": count_families,
           "matmul_size": 1024 if quick else 2048, "matmul_repeats": 3 if quick else 5},
          work_dir, "counts", timeout)
      log(f"model counts and matmul rates: {time.perf_counter() - start:.0f} s"
          + (f" FAILED: {report['counts']['error']}" if "error" in report["counts"]
             else ""))
    for index, (family, column, key) in enumerate(plan):
      if key is None:
        cells[family][column] = {"not_applicable": NOT_APPLICABLE[(family, column)]}
        continue
      if key in measured:
        cells[family][column] = dict(measured[key][1], same_as=measured[key][0])
        log(f"[{index + 1}/{len(plan)}] {family} {column}: same settings as "
            f"{measured[key][0]}")
        continue
      spec = dict(family=family, column=column, sampler=sampler,
                  model_dir=model_dir if FAMILIES[family]["kind"] == "sample" else None,
                  **FAMILIES[family][mode])
      start = time.perf_counter()
      result = launch(spec, work_dir, f"{family}_{column}", timeout,
                      workers=COLUMNS[column].get("workers", 0))
      cells[family][column] = result
      measured[key] = (column, result)
      figure = (f"ERROR {result['error']}" if "error" in result else
                f"{result['rate']:.1f} {result['unit']}")
      log(f"[{index + 1}/{len(plan)}] {family} {column}: {figure} "
          f"({time.perf_counter() - start:.0f} s)")
  report.update(cells=cells, families=list(families), columns=list(columns),
                settings=dict(mode=mode, sampler=sampler, model_dir=model_dir,
                              timeout=timeout,
                              families={f: FAMILIES[f][mode] for f in families}))
  return report


# ------------------------------------------------------------------- the table
def _fmt_rate(value):
  if value >= 100:
    return f"{value:,.0f}"
  if value >= 10:
    return f"{value:.1f}"
  return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def first_measured(row, columns):
  """The first column of a row with a figure, or None."""
  for column in columns:
    if "rate" in row.get(column, {}):
      return column
  return None


def cell_text(row, column, reference):
  cell = row.get(column, {})
  if "not_applicable" in cell:
    return "n/a"
  if "error" in cell:
    return "failed"
  if "rate" not in cell:
    return "-"
  text = _fmt_rate(cell["rate"])
  if reference is not None:
    text += f" ({cell['rate'] / row[reference]['rate']:.2f})"
  return text


def _row_label(family, report):
  label = FAMILIES[family]["label"]
  if FAMILIES[family]["kind"] == "sample":
    settings = report["settings"]
    chains = settings["families"][family]["chains"]
    source = (f"GAN of {settings['model_dir']}" if settings.get("model_dir")
              else "fresh MoG GAN")
    label = f"latent sampling: {settings['sampler']}, {chains} chains, {source}"
  return label


def format_table(report):
  """The Markdown table of a report: one row per family, one column per setting."""
  columns = report["columns"]
  models = (report.get("counts") or {}).get("models", {})
  head = ["family", "unit", "GFLOP/step"] + [COLUMNS[c]["label"] for c in columns]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for family in report["families"]:
    row = report["cells"][family]
    reference = first_measured(row, columns)
    unit = next((row[c]["unit"] for c in columns if "unit" in row.get(c, {})),
                "chain-steps/s" if FAMILIES[family]["kind"] == "sample" else "steps/s")
    gflop = models.get(family, {}).get("gflop_per_step")
    cells = [_row_label(family, report), unit, "-" if gflop is None else f"{gflop:.3g}"]
    cells += [cell_text(row, c, reference) for c in columns]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def pair_ratios(report):
  """{family: {'b/a': ratio}} for the `PAIRS` both measured."""
  out = {}
  for family in report["families"]:
    row = report["cells"][family]
    for a, b in PAIRS:
      if "rate" in row.get(a, {}) and "rate" in row.get(b, {}):
        out.setdefault(family, {})[f"{b}/{a}"] = row[b]["rate"] / row[a]["rate"]
  return out


def failures(report):
  """(family, column, error) of every failed cell."""
  return [(f, c, cell["error"]) for f in report["families"]
          for c, cell in report["cells"][f].items() if "error" in cell]


# ---------------------------------------------------------------- the projection
def efficiency(report):
  """{precision: {'fraction', 'family', ...}}: GFLOP per CPU second of the cifar row
  (else the largest measured training row) in that precision's column over those of
  a dense matrix product in the same precision on this CPU. CPU seconds on both
  sides, so that the fraction does not depend on the load of the moment."""
  counts = report.get("counts") or {}
  models, matmul = counts.get("models", {}), counts.get("matmul_gflops", {})
  rows = [f for f in ("cifar_full", "cifar", "mnist", "mog")
          if f in report["cells"] and f in models]
  out = {}
  for precision in ("float32", "mixed_bfloat16"):
    for family in rows:
      cell = report["cells"][family].get(precision, {})
      if cell.get("cpu_ms_per_step") and precision in matmul:
        gflop = models[family]["gflop_per_step"]
        per_cpu_second = gflop / (min(cell["cpu_ms_per_step"]) / 1000)
        out[precision] = dict(fraction=per_cpu_second / matmul[precision]["cpu"],
                              family=family, gflop_per_cpu_second=per_cpu_second,
                              wall_gflops=gflop * cell["rate"],
                              matmul_gflop_per_cpu_second=matmul[precision]["cpu"])
        break
  return out


def projection(model, fractions, hardware=HARDWARE):
  """Projected cost of one training step of `model` on each device of `hardware`.

  Args:
    model: `count_model` output: `gflop_per_step`, `batch_size`,
      `params_generator`, `params_discriminator`, `params_non_trainable`,
      `saved_activation_elements` ({update: elements}), `ops_per_step`,
      `optimizer_ops_per_step`.
    fractions: {'float32' / 'mixed_bfloat16': fraction of the dense matmul rate the
      step reaches}; a precision without one uses the other's.
    hardware: device entries (`HARDWARE`).

  Returns one dict per device and precision: replicas, per-replica batch, FLOP per
  replica, parameter and all-reduced bytes, memory per replica, and the estimated
  step time: max(compute, HBM traffic) + the ring all-reduce of both players'
  gradients + the per-op host overhead of every op (`step_s`, the step uncompiled),
  and the same with the overhead of the optimizer updates alone (`xla_step_s`: each
  replica's forward and backward pass one XLA computation, as `Run` compiles them
  with --runtime.jit_compile=true); None where no fraction is known.
  """
  params = model["params_generator"] + model["params_discriminator"]
  param_bytes = 4 * (params + model["params_non_trainable"])  # float32 variables
  grad_bytes = 4 * params  # float32 gradients, whatever the compute precision
  activations = max(model["saved_activation_elements"].values(), default=0)
  rows = []
  for device in hardware:
    replicas = device["replicas"]
    per_replica_batch = model["batch_size"] / replicas
    share = per_replica_batch / model["batch_size"]
    for label, peak, measured_as, element_bytes in device["precisions"]:
      activation_bytes = activations * share * element_bytes
      memory = param_bytes + 8 * params + grad_bytes + activation_bytes
      gflop = model["gflop_per_step"] / replicas
      # Ring all-reduce: each replica sends and receives 2 (R - 1) / R of the bytes.
      allreduce_s = (2 * (replicas - 1) / replicas * grad_bytes
                     / (device["link_gbps"] * 1e9))
      traffic = ACTIVATION_PASSES * activation_bytes + PARAM_TRAFFIC_BYTES * params
      memory_s = traffic / (device["hbm_gbps"] * 1e9)
      host_s = model["ops_per_step"] * device["per_op_overhead_us"] * 1e-6
      xla_host_s = (model["optimizer_ops_per_step"] * device["per_op_overhead_us"]
                    * 1e-6)
      fraction = fractions.get(measured_as)
      if fraction is None:
        fraction = next(iter(fractions.values()), None)
      compute_s = None if fraction is None else gflop * 1e9 / (peak * 1e12 * fraction)
      device_s = (None if compute_s is None
                  else max(compute_s, memory_s) + allreduce_s)
      rows.append(dict(device=device["name"], precision=label, replicas=replicas,
                       per_replica_batch=per_replica_batch, peak_tflops=peak,
                       gflop_per_replica=gflop, param_bytes=param_bytes,
                       allreduce_bytes=grad_bytes, allreduce_bytes_bf16=grad_bytes / 2,
                       activation_bytes=activation_bytes, memory_bytes=memory,
                       memory_fraction=memory / (device["memory_gib"] * 2**30),
                       fraction=fraction, compute_s=compute_s, memory_s=memory_s,
                       allreduce_s=allreduce_s, host_s=host_s,
                       xla_host_s=xla_host_s,
                       step_s=None if device_s is None else device_s + host_s,
                       xla_step_s=None if device_s is None else device_s + xla_host_s))
  return rows


def _mb(value):
  return f"{value / 1e6:,.1f} MB"


def _ms(value):
  return "-" if value is None else f"{1000 * value:.2f}"


def projection_lines(report, hardware=HARDWARE):
  """The projection as text (from `projection`), or a line saying why there is none."""
  models = (report.get("counts") or {}).get("models", {})
  model = models.get(PROJECTED)
  if model is None:
    return ["Projection: no model counts (the counting process failed or was skipped)."]
  fractions = efficiency(report)
  rows = projection(model, {p: v["fraction"] for p, v in fractions.items()}, hardware)
  params = model["params_generator"] + model["params_discriminator"]
  saved = model["saved_activation_elements"]
  lines = [
      f"Projection for {FAMILIES[PROJECTED]['flagfile']} (global batch "
      f"{model['batch_size']}):",
      f"- counted from its traced train step: {model['gflop_per_step']:,.0f} GFLOP per "
      f"step (2 x multiply-adds of convolutions and matrix products); "
      f"{model['ops_per_step']:,} ops per step (constants and inputs excluded), "
      f"{model['optimizer_ops_per_step']:,} of them in the optimizer updates.",
      f"- parameters: generators {model['params_generator']:,}, discriminator "
      f"{model['params_discriminator']:,} (+{model['params_non_trainable']:,} "
      f"BatchNorm statistics): {_mb(4 * params)} of float32 weights; Adam slots "
      f"{_mb(8 * params)}.",
      f"- all-reduced per step: the gradients of both players, {_mb(4 * params)} in "
      f"float32 (also under mixed precision: the variables, hence the gradients, stay "
      f"float32); {_mb(2 * params)} if they were reduced in bfloat16.",
      "- activations kept for back-propagation at the global batch (forward tensors "
      "the gradients read, per player update): " + ", ".join(
          f"{scope} {_mb(4 * n)}" for scope, n in sorted(saved.items()))
      + " in float32; the larger is used (the updates run one after the other)."]
  for precision, value in sorted(fractions.items()):
    lines.append(
        f"- measured here: the {value['family']} row in {precision} ran "
        f"{value['gflop_per_cpu_second']:.1f} GFLOP per CPU second "
        f"({value['wall_gflops']:.1f} GFLOP/s of wall time), {value['fraction']:.1%} "
        f"of the {value['matmul_gflop_per_cpu_second']:.0f} GFLOP per CPU second of a "
        f"{report['counts']['matmul_size']}^2 matrix product on this CPU.")
  if not fractions:
    lines.append("- no training row in float32 was measured: no step time estimate.")
  lines += ["", "| device | precision (peak) | replicas x batch | GFLOP/replica | "
            "memory/replica | compute ms | HBM ms | all-reduce ms | host ms | step ms "
            "| steps/s | step ms, jit_compile=true | steps/s, jit_compile=true |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

  def rate(seconds):
    return "-" if seconds is None else f"{1 / seconds:,.0f}"
  for r in rows:
    lines.append(
        f"| {r['device']} | {r['precision']} ({r['peak_tflops']:g} TFLOP/s) | "
        f"{r['replicas']} x {r['per_replica_batch']:g} | "
        f"{r['gflop_per_replica']:.0f} | "
        f"{r['memory_bytes'] / 2**30:.2f} GiB ({r['memory_fraction']:.1%}) | "
        f"{_ms(r['compute_s'])} | {_ms(r['memory_s'])} | {_ms(r['allreduce_s'])} | "
        f"{_ms(r['host_s'])} | {_ms(r['step_s'])} | {rate(r['step_s'])} | "
        f"{_ms(r['xla_step_s'])} | {rate(r['xla_step_s'])} |")
  lines += [
      "",
      "How the estimate is made (assumptions, not measurements):",
      "- compute ms = GFLOP per replica / (published peak x the fraction measured "
      "here), i.e. the step is assumed to reach the same share of the device's dense "
      "matmul peak as it reaches of this CPU's; at 8 or 16 examples per replica a GPU "
      "is likely to do worse than that.",
      f"- HBM ms = ({ACTIVATION_PASSES} passes over the activations + "
      f"{PARAM_TRAFFIC_BYTES} bytes per parameter for weights, gradients and Adam) / "
      "HBM bandwidth; the step takes the larger of compute and HBM time.",
      "- all-reduce ms = ring all-reduce, 2 (R - 1) / R x gradient bytes / link "
      "bandwidth per direction, not overlapped with compute.",
      "- host ms = ops per step x an assumed per-op dispatch cost, ops dispatched one "
      "after the other (an assumption, not a specification figure), for the config "
      "as it is (--runtime.jit_compile=false); with jit_compile=true each replica's "
      "forward and backward pass is one XLA computation and only the "
      f"{model['optimizer_ops_per_step']:,} ops of the optimizer updates are "
      "dispatched one by one (compute assumed unchanged by XLA).",
      "- memory/replica = float32 weights + Adam slots (2x) + gradients + activations "
      "of the per-replica batch (bfloat16 activations under mixed precision); "
      "framework workspace not included.",
  ]
  for device in hardware:
    lines.append(f"- {device['name']}: public specification figures: "
                 f"{device['source']}. Assumed: {device['notes']}.")
  return lines


# ------------------------------------------------------------------------- main
def _parse_list(text, known, what):
  values = tuple(v.strip() for v in text.split(",") if v.strip())
  unknown = [v for v in values if v not in known]
  if unknown or not values:
    raise argparse.ArgumentTypeError(f"unknown {what} {unknown or text!r}; choose from "
                                     f"{', '.join(known)}")
  return values


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--families", type=lambda t: _parse_list(t, FAMILIES, "family"),
                      default=None, help="comma-separated rows (default "
                      f"{','.join(DEFAULT_FAMILIES)}; --quick: "
                      f"{','.join(QUICK_FAMILIES)}); choices: {', '.join(FAMILIES)}")
  parser.add_argument("--columns", type=lambda t: _parse_list(t, COLUMNS, "column"),
                      default=DEFAULT_COLUMNS, help="comma-separated columns (default "
                      f"{','.join(DEFAULT_COLUMNS)}); choices: {', '.join(COLUMNS)}")
  parser.add_argument("--cifar_full", action="store_true",
                      help="add a row for configs/cifar10.cfg (1,012 GFLOP per step: "
                           "several seconds per step on this CPU)")
  parser.add_argument("--quick", action="store_true",
                      help="a smoke run of about two minutes (fewer steps and rows)")
  parser.add_argument("--sampler", default="rep", choices=("rep", "ddls", "mh", "wl"),
                      help="sampler of the sampling row (default rep)")
  parser.add_argument("--model_dir", default=None,
                      help="a trained run whose GAN the sampling row samples (default: "
                           "a freshly initialised mog_ring.cfg GAN)")
  parser.add_argument("--timeout", type=float, default=1200,
                      help="seconds a cell may take before it is stopped "
                           "(default 1200)")
  parser.add_argument("--no_counts", action="store_true",
                      help="skip the model counts and the projection")
  parser.add_argument("--json", metavar="PATH", default=None,
                      help="also write the report (every cell, counts, "
                           "projection) here")
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.model_dir and not os.path.isfile(os.path.join(args.model_dir, "flags.json")):
    parser.error(f"--model_dir={args.model_dir} holds no flags.json: not a run "
                 "directory")
  if args.families is None:
    args.families = QUICK_FAMILIES if args.quick else DEFAULT_FAMILIES
  if args.cifar_full and "cifar_full" not in args.families:
    args.families = tuple(args.families) + ("cifar_full",)
  return args


def report_text(report):
  """Everything printed after the runs: header, table, ratios, failures, projection."""
  machine = report["machine"]
  settings = report["settings"]
  steps = "; ".join(
      f"{f}: {s['rounds']} x {s['round_steps']} timed"
      + (" chunk steps" if FAMILIES[f]["kind"] == "sample" else " steps")
      for f, s in settings["families"].items())
  versions = next((c for row in report["cells"].values() for c in row.values()
                   if "tensorflow" in c), {})
  lines = [machine["cpu_line"],
           f"TensorFlow {versions.get('tensorflow', '?')}, Keras "
           f"{versions.get('keras', '?')}; load average {machine['load_start']} at "
           f"start, {machine['load_end']} at the end; {settings['mode']} setting "
           f"({steps}); {machine['minutes']:.1f} min.",
           "Each cell: fastest timed round in its own process (warm-up excluded), and "
           "in brackets its ratio to the row's first column; the CPU seconds per step "
           "of every round, steadier when other jobs share the cores, are in the JSON.",
           "",
           format_table(report), ""]
  ratios = pair_ratios(report)
  for family, values in ratios.items():
    lines.append(f"- {family}: "
                 + ", ".join(f"{k} = {v:.2f}" for k, v in values.items()))
  for family in report["families"]:
    for column, cell in report["cells"][family].items():
      if "same_as" in cell:
        lines.append(f"- {family} {column}: same settings as {cell['same_as']}, "
                     "measured once.")
  for family, column, error in failures(report):
    lines.append(f"- FAILED {family} {column}: {error}")
  if report.get("counts") is not None and "error" in report["counts"]:
    lines.append(f"- FAILED model counts: {report['counts']['error']}")
  if report.get("counts") is not None:
    lines += [""] + projection_lines(report)
  return "\n".join(lines)


def _load_line():
  with open("/proc/loadavg", encoding="ascii") as f:
    return " ".join(f.read().split()[:3])


def main(argv=None):
  args = parse_args(argv)
  if args.child is not None:
    child_main(args.child)
    return None
  cpu = cpu_info()
  start, load_start = time.time(), _load_line()
  print(cpu_line(cpu), file=sys.stderr, flush=True)
  report = run_benchmark(args.families, args.columns, quick=args.quick,
                         sampler=args.sampler, model_dir=args.model_dir,
                         timeout=args.timeout, counts=not args.no_counts,
                         log=lambda m: print(m, file=sys.stderr, flush=True))
  report["machine"] = dict(cpu=cpu, cpu_line=cpu_line(cpu), load_start=load_start,
                           load_end=_load_line(), minutes=(time.time() - start) / 60)
  text = report_text(report)
  report["table"] = text
  report["ratios"] = pair_ratios(report)
  report["efficiency"] = efficiency(report)
  model = ((report.get("counts") or {}).get("models") or {}).get(PROJECTED)
  if model is not None:
    report["projection"] = projection(
        model, {p: v["fraction"] for p, v in report["efficiency"].items()})
  print(text, flush=True)
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    partial = f"{args.json}.{os.getpid()}.tmp"  # renamed once complete
    with open(partial, "w", encoding="utf-8") as f:
      json.dump(report, f, indent=2)
    os.replace(partial, args.json)
    print(f"report written to {args.json}")
  return report


if __name__ == "__main__":
  main()
