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
projection (tools/toolkit/projection.py): FLOPs of one step of configs/cifar10.cfg
counted from its traced graph (tools/toolkit/step_graph.py), its parameters, the bytes all-reduced
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
import json
import math
import os
import sys
import tempfile
import time

from toolkit import children
from toolkit import machine
from toolkit import timing
from toolkit.flagfiles import read_flagfile
from toolkit.projection import PROJECTED, efficiency, projection, projection_lines

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

# Data sets whose default evaluators cost nothing to build.
MIXTURES = ("ring", "grid")


# ================================================================== child side
def _quiet_tensorflow():
  from tf_stackelberg.console import startup  # pylint: disable=import-outside-toplevel
  return startup.import_tensorflow_quietly()


def load_config(flagfile, overrides=None, model_dir=None):
  """The `Config` of a flagfile, or of the trained run `model_dir`, with `overrides`
  (flag names -> values)."""
  if model_dir:  # a trained run: its own settings
    from tf_stackelberg.training import run_settings  # pylint: disable=import-outside-toplevel
    config = run_settings.read_resolved(model_dir).replace(model_dir=model_dir)
    return config.replace(**(overrides or {}))
  return read_flagfile(flagfile, overrides)


def _cell_config(spec, tmp_dir):
  """The config of one cell: the family's, the column's runtime, cheap evaluators."""
  family, column = FAMILIES[spec["family"]], COLUMNS[spec["column"]]
  base = load_config(family["flagfile"], model_dir=spec.get("model_dir"))
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
  return {"loadavg": machine.load_average(), "time": time.time()}


def _train_cell(spec, config, strategy):
  """Steps/s of `fit` on the family's batches (fastest timed epoch)."""
  import keras  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training.input import training_batches  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training.run import Run  # pylint: disable=import-outside-toplevel

  class EpochClock(keras.callbacks.Callback):
    """Wall and process CPU seconds of every epoch."""

    def __init__(self):
      super().__init__()
      self.laps, self._watch = [], timing.Stopwatch()

    def on_epoch_begin(self, epoch, logs=None):
      self._watch.start()

    def on_epoch_end(self, epoch, logs=None):
      # Keras has read the epoch's metrics by now: the steps have run.
      self._watch.stop()
      self.laps.append((self._watch.wall, self._watch.cpu))

  with timing.Stopwatch() as setup:
    run = Run(config, strategy)
    config, gan = run.config, run.gan
    steps, rounds = spec["round_steps"], spec["rounds"]
    if steps % gan.steps_per_execution:
      raise ValueError(f"{steps} steps per round do not split into calls of "
                       f"{gan.steps_per_execution}")
    total = steps * (rounds + 1)
    data = training_batches(strategy, run.data, config.game.batch_size, config.seed,
                            0, total)
  clock = EpochClock()
  gan.fit(data, epochs=rounds + 1, steps_per_epoch=steps, callbacks=[clock],
          shuffle=False, verbose=0)
  if int(gan.step.numpy()) != total:
    raise RuntimeError(f"fit ran {int(gan.step.numpy())} steps, expected {total}")
  # The first epoch absorbs tracing, compilation and the first executions.
  epochs = timing.Series.of_laps(clock.laps, warmup=1)
  return dict(unit="steps/s", rates=[steps / wall for wall in epochs.wall],
              cpu_ms_per_step=[1000 * cpu / steps for cpu in epochs.cpu],
              warmup_seconds=epochs.warmup_wall, setup_seconds=setup.wall,
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
  from toolkit.chunk_clock import ChunkClock, phase_starts  # pylint: disable=import-outside-toplevel

  with timing.Stopwatch() as setup:
    run = Run(config, strategy)
    if spec.get("model_dir"):
      run.restore(require=True, repair=False)
    model = latent.latent_model(run.gan)
    settings = latent.sampler_settings(run.config.sampling)
    chains, chunk = spec["chains"], spec["round_steps"]
    steps = chunk * (spec["rounds"] + 1)
    clock = ChunkClock(phase_starts(spec["sampler"], steps, settings))
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
              setup_seconds=setup.wall, timed_steps=sum(n for _, n, _ in steady),
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
                loadavg_end=machine.load_average(),
                seconds=time.time() - before["time"])
  return result


def run_counts(spec):
  """The model counts of the families `spec['families']` and this CPU's matmul
  rates (one process: nothing here depends on devices)."""
  _quiet_tensorflow()
  from tf_stackelberg.data.registry import DATASETS  # pylint: disable=import-outside-toplevel
  from toolkit.projection import count_model, matmul_gflops  # pylint: disable=import-outside-toplevel
  models = {}
  for name in spec["families"]:
    config = read_flagfile(FAMILIES[name]["flagfile"])
    data = DATASETS.get(config.data.dataset)(config.data)
    models[name] = count_model(config.replace(model_dir="unused"), data.element_shape)
  size, repeats = spec["matmul_size"], spec["matmul_repeats"]
  rates = {"float32": matmul_gflops("float32", size, repeats),
           "mixed_bfloat16": matmul_gflops("bfloat16", size, repeats)}
  return dict(models=models, matmul_gflops=rates, matmul_size=size)


def measure(spec):
  """What a child process measures: the model counts or one cell."""
  return run_counts(spec) if spec.get("counts") else run_cell(spec)


# ================================================================== parent side
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
  runtime = read_flagfile(FAMILIES[family]["flagfile"]).runtime
  return {"jit_compile": runtime.jit_compile, "precision": runtime.precision}


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
      report["counts"] = children.launch(
          __file__,
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
      result = children.launch(__file__, spec, work_dir, f"{family}_{column}",
                               timeout, workers=COLUMNS[column].get("workers", 0))
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
  host = report["machine"]
  settings = report["settings"]
  steps = "; ".join(
      f"{f}: {s['rounds']} x {s['round_steps']} timed"
      + (" chunk steps" if FAMILIES[f]["kind"] == "sample" else " steps")
      for f, s in settings["families"].items())
  versions = next((c for row in report["cells"].values() for c in row.values()
                   if "tensorflow" in c), {})
  lines = [host["cpu_line"],
           f"TensorFlow {versions.get('tensorflow', '?')}, Keras "
           f"{versions.get('keras', '?')}; load average {host['load_start']} at "
           f"start, {host['load_end']} at the end; {settings['mode']} setting "
           f"({steps}); {host['minutes']:.1f} min.",
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
    lines += [""] + projection_lines(report, FAMILIES[PROJECTED]["flagfile"])
  return "\n".join(lines)


def main(argv=None):
  args = parse_args(argv)
  if args.child is not None:
    children.run_child(args.child, measure)
    return None
  cpu = machine.cpu_info()
  start, load_start = time.time(), machine.load_line()
  print(machine.cpu_line(cpu), file=sys.stderr, flush=True)
  report = run_benchmark(args.families, args.columns, quick=args.quick,
                         sampler=args.sampler, model_dir=args.model_dir,
                         timeout=args.timeout, counts=not args.no_counts,
                         log=lambda m: print(m, file=sys.stderr, flush=True))
  report["machine"] = dict(cpu=cpu, cpu_line=machine.cpu_line(cpu),
                           load_start=load_start, load_end=machine.load_line(),
                           minutes=(time.time() - start) / 60)
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
