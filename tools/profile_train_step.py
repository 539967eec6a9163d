r"""Cost of one training step of a config: time, peak memory, FLOPs and FLOP rate.

Builds the game a config describes (any `--flagfile` and flag overrides that
`python -m tf_stackelberg.main` accepts), feeds it the config's real data, and for
each XLA setting asked for prints one row:

  step s          wall seconds per training step: the fastest of `--rounds` timed
                  `fit` calls of `--steps / --rounds` steps each, after a warm-up
                  `fit` of `--warmup` steps (tracing and compilation happen there).
  compile+warmup  wall seconds of that warm-up `fit`.
  peak RSS GiB    the process's peak resident memory while this row trained
                  (Linux: VmHWM, reset before each row; the model, its optimiser
                  slots, the data arrays and TensorFlow's buffers together).
  GFLOP/step      2 x the multiply-adds of every convolution (forward, input- and
                  filter-gradient), matrix product and einsum that the traced
                  train step executes (ops whose results are unused are pruned by
                  the runtime and not counted), from their static shapes. Elementwise ops,
                  BatchNorm and the optimiser update are left out: they are a few
                  percent of a convolutional step.
  GFLOP/s         GFLOP/step / step s.
  of ref conv     that rate as a fraction of the rate one TensorFlow op reaches
                  alone: the step's most expensive convolution op (same op type,
                  shapes, strides and padding, no XLA), timed in a loop.

A second table times every convolution of the step alone (each distinct op once,
counted as often as the step runs it), by op type, against the first row's step
time: what the convolutions would cost without everything else in the step.

The figures of one run are comparable with each other; another machine, or the
same one under other load, gives other absolute numbers.

Usage (from the repository root):
  python tools/profile_train_step.py --flagfile=configs/cifar10.cfg
  python tools/profile_train_step.py --flagfile=configs/cifar10_quick.cfg \
      --xla=off --steps=20 --json=/tmp/profile.json
"""

import os
import resource
import sys
import time

# Run against the checkout this file belongs to, installed or not.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_stackelberg.console import startup  # pylint: disable=wrong-import-position

startup.import_tensorflow_quietly()

# pylint: disable=wrong-import-position
from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.machine import cpu_line
from tf_stackelberg.config import flags as config_flags
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.game.builder import build_gan
# pylint: enable=wrong-import-position

config_flags.define_flags()
flags.DEFINE_enum("xla", "both", ["both", "on", "off"],
                  "Which --runtime.jit_compile settings to profile.")
flags.DEFINE_integer("steps", 6, "Timed training steps per row.")
flags.DEFINE_integer("rounds", 2, "Timed fits the steps are split into; the fastest "
                     "round gives the step time.")
flags.DEFINE_integer("warmup", 2, "Steps of the untimed warm-up fit.")
flags.DEFINE_integer("ref_iterations", 10, "Runs of the reference convolution.")
flags.DEFINE_string("json", "", "Also write the table as JSON to this path.")
FLAGS = flags.FLAGS

CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
MATMUL_OPS = ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")


# ------------------------------------------------------------------ counting
def _dims(tensor):
  shape = tensor.shape
  if shape.rank is None or not shape.is_fully_defined():
    raise ValueError(f"{tensor.name} has no static shape ({shape}); profile with a "
                     "fixed batch size")
  return [int(d) for d in shape]


def _conv_macs(op):
  """Multiply-adds of a 2-D convolution op, forward or either gradient: the
  elements of the convolution's output side times kernel height x width x input
  channels (the same count for all three ops of one layer)."""
  if op.type == "Conv2D":
    out, kernel = _dims(op.outputs[0]), _dims(op.inputs[1])
  elif op.type == "Conv2DBackpropInput":
    out, kernel = _dims(op.inputs[2]), _dims(op.inputs[1])
  else:  # Conv2DBackpropFilter: the kernel is its output
    out, kernel = _dims(op.inputs[2]), _dims(op.outputs[0])
  kh, kw, cin, _ = kernel
  return int(np.prod(out)) * kh * kw * cin


def _matmul_macs(op):
  """Multiply-adds of a (batched) matrix product or an einsum."""
  if op.type == "Einsum":
    equation = op.get_attr("equation").decode()
    lhs = equation.split("->")[0].split(",")
    sizes = {}
    for term, tensor in zip(lhs, op.inputs):
      for letter, size in zip(term, _dims(tensor)):
        sizes[letter] = size
    return int(np.prod(list(sizes.values())))
  a, out = _dims(op.inputs[0]), _dims(op.outputs[0])
  transposed = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
  inner = a[-2] if transposed else a[-1]
  return int(np.prod(out)) * inner


def _subgraphs(graph):
  """`graph` and the graphs of the functions it calls (while-loop bodies, calls)."""
  seen, pending = [], [graph]
  while pending:
    g = pending.pop()
    if any(g is s for s in seen):
      continue
    seen.append(g)
    for function in getattr(g, "_functions", {}).values():
      inner = getattr(function, "graph", None)
      if inner is not None:
        pending.append(inner)
  return seen


def _executed_ops(graph):
  """The ops of `graph` that running it executes: those its outputs and control
  outputs (the variable updates) depend on. Gradient functions also build ops whose
  results nobody uses (the discriminator's kernel gradients in the generator's
  update); the runtime prunes those, so they are not counted. Graphs of nested
  functions are taken whole."""
  roots = [t.op for t in getattr(graph, "outputs", [])]
  roots += list(getattr(graph, "control_outputs", []))
  if not roots:
    return graph.get_operations()
  seen, pending = set(), list(roots)
  while pending:
    op = pending.pop()
    if op.name in seen:
      continue
    seen.add(op.name)
    pending.extend(t.op for t in op.inputs)
    pending.extend(op.control_inputs)
  return [op for op in graph.get_operations() if op.name in seen]


def step_ops(graph):
  """Every op a run of a traced graph executes, those of the functions it calls
  included."""
  return [op for g in _subgraphs(graph) for op in _executed_ops(g)]


def count_macs(graph):
  """{'total': multiply-adds, 'by_type': {op type: multiply-adds}, 'largest': the
  convolution op with the most multiply-adds (or None), 'convolutions': every
  convolution op} of the ops a run of a traced graph executes."""
  by_type, largest, convolutions = {}, (0, None), []
  for op in step_ops(graph):
    if op.type in CONV_OPS:
      macs = _conv_macs(op)
      convolutions.append(op)
      largest = max(largest, (macs, op), key=lambda pair: pair[0])
    elif op.type in MATMUL_OPS:
      macs = _matmul_macs(op)
    else:
      continue
    by_type[op.type] = by_type.get(op.type, 0) + macs
  return dict(total=sum(by_type.values()), by_type=by_type, largest=largest[1],
              convolutions=convolutions)


def train_step_graph(gan, batch):
  """The graph of one `train_step` on a batch shaped like `batch` (not run)."""
  spec = tf.TensorSpec(batch.shape, batch.dtype)
  return tf.function(gan.train_step).get_concrete_function(spec).graph


# ------------------------------------------------------------------ reference
def _reference_op(op):
  """A function running `op`'s convolution alone on random inputs of its shapes."""
  attrs = {name: op.get_attr(name) for name in ("strides", "padding", "data_format",
                                                 "dilations")}
  attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
  rng = np.random.default_rng(0)

  def random(shape):
    return tf.constant(rng.standard_normal(shape).astype(np.float32))
  if op.type == "Conv2D":
    x, w = random(_dims(op.inputs[0])), random(_dims(op.inputs[1]))
    return tf.function(lambda: tf.raw_ops.Conv2D(input=x, filter=w, **attrs))
  if op.type == "Conv2DBackpropInput":
    sizes = tf.constant(_dims(op.outputs[0]), tf.int32)
    w, dy = random(_dims(op.inputs[1])), random(_dims(op.inputs[2]))
    return tf.function(lambda: tf.raw_ops.Conv2DBackpropInput(
        input_sizes=sizes, filter=w, out_backprop=dy, **attrs))
  sizes = tf.constant(_dims(op.outputs[0]), tf.int32)
  x, dy = random(_dims(op.inputs[0])), random(_dims(op.inputs[2]))
  return tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
      input=x, filter_sizes=sizes, out_backprop=dy, **attrs))


def standalone_seconds(op, iterations):
  """Seconds of `op`'s convolution run alone (fastest of `iterations` runs)."""
  run = _reference_op(op)
  run().numpy()  # trace and warm up
  best = float("inf")
  for _ in range(iterations):
    start = time.perf_counter()
    run().numpy()
    best = min(best, time.perf_counter() - start)
  return best


def reference_rate(op, iterations):
  """GFLOP/s of `op`'s convolution run alone (fastest of `iterations` runs)."""
  return 2 * _conv_macs(op) / standalone_seconds(op, iterations) / 1e9


def _signature(op):
  shapes = tuple(tuple(_dims(t)) for t in list(op.inputs) + list(op.outputs)
                 if t.shape.rank == 4)
  return op.type, shapes, tuple(op.get_attr("strides")), op.get_attr("padding")


def convolution_breakdown(ops, iterations):
  """{op type: (ops, G multiply-adds, seconds)} of the step's convolutions, each
  distinct one timed alone once (fastest of `iterations`) and counted as often as
  the step runs it."""
  groups = {}
  for op in ops:
    groups.setdefault(_signature(op), []).append(op)
  table = {}
  for (kind, _, _, _), members in groups.items():
    seconds = standalone_seconds(members[0], iterations) * len(members)
    count, macs, total = table.get(kind, (0, 0, 0.0))
    table[kind] = (count + len(members),
                   macs + _conv_macs(members[0]) * len(members) / 1e9,
                   total + seconds)
  return table


# ------------------------------------------------------------------ memory
def reset_peak_memory():
  """Resets the process's peak RSS (Linux clear_refs '5'); False if unsupported."""
  try:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
      f.write("5")
    return True
  except OSError:
    return False


def peak_memory_gib():
  """The process's peak resident memory since the last reset, GiB."""
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 2**20
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ------------------------------------------------------------------ one row
def _timed_fit(gan, dataset, steps):
  start = time.perf_counter()
  gan.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
  return time.perf_counter() - start


def profile(config, data, jit_compile, steps, rounds, warmup):
  """The row of one XLA setting (dict), training a freshly built game."""
  config = config.replace(**{"runtime.jit_compile": jit_compile,
                             "trainer.steps_per_execution": 1})
  keras.utils.set_random_seed(config.seed)
  reset_peak_memory()
  gan = build_gan(config, data.element_shape)
  batch = config.game.batch_size
  dataset = data.batches(batch, config.seed).repeat()
  macs = count_macs(train_step_graph(gan, next(iter(dataset))))
  compile_seconds = _timed_fit(gan, dataset, warmup)
  per_round = max(1, steps // rounds)
  step_seconds = min(_timed_fit(gan, dataset, per_round) / per_round
                     for _ in range(rounds))
  gflop = 2 * macs["total"] / 1e9
  return dict(xla=jit_compile, step_seconds=step_seconds,
              compile_seconds=compile_seconds, peak_rss_gib=peak_memory_gib(),
              gflop_per_step=gflop, gflops=gflop / step_seconds,
              gmac_by_op={k: v / 1e9 for k, v in macs["by_type"].items()},
              largest_op=macs["largest"], convolutions=macs["convolutions"])


# ------------------------------------------------------------------ report
def table_lines(rows, ref_gflops):
  head = ("XLA", "step s", "compile+warmup s", "peak RSS GiB", "GFLOP/step",
          "GFLOP/s", "of ref conv")
  body = [("on" if r["xla"] else "off", f"{r['step_seconds']:.3f}",
           f"{r['compile_seconds']:.1f}", f"{r['peak_rss_gib']:.2f}",
           f"{r['gflop_per_step']:.1f}", f"{r['gflops']:.1f}",
           "-" if ref_gflops is None else f"{r['gflops'] / ref_gflops:.2f}")
          for r in rows]
  widths = [max(len(str(c[i])) for c in [head] + body) for i in range(len(head))]

  def line(values):
    return "  ".join(v.rjust(w) for v, w in zip(values, widths))
  return [line(head), "  ".join("-" * w for w in widths)] + [line(b) for b in body]


def breakdown_lines(breakdown, step_seconds):
  """The table of `convolution_breakdown`, with the share of a step's time."""
  head = ("op", "ops", "G mult-adds", "seconds alone", "GFLOP/s", "of step")
  body = [(kind, str(n), f"{m:.1f}", f"{t:.3f}", f"{2 * m / t:.1f}",
           f"{t / step_seconds:.2f}") for kind, (n, m, t) in sorted(breakdown.items())]
  total = sum(t for _, _, t in breakdown.values())
  body.append(("all", str(sum(n for n, _, _ in breakdown.values())),
               f"{sum(m for _, m, _ in breakdown.values()):.1f}", f"{total:.3f}",
               "", f"{total / step_seconds:.2f}"))
  widths = [max(len(c[i]) for c in [head] + body) for i in range(len(head))]

  def line(values):
    return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                     for i, (v, w) in enumerate(zip(values, widths)))
  return [line(head), "  ".join("-" * w for w in widths)] + [line(b) for b in body]


def describe_op(op):
  if op is None:
    return "no convolution in the step"
  shapes = ", ".join(str(_dims(t)) for t in op.inputs if t.shape.rank == 4)
  return f"{op.type} ({shapes}; {_conv_macs(op) / 1e9:.2f} G multiply-adds)"


def main(argv):
  del argv
  config = config_flags.config_from_flags().validate()
  settings = {"both": (False, True), "on": (True,), "off": (False,)}[FLAGS.xla]
  data = DATASETS.get(config.data.dataset)(config.data)
  rows = [profile(config, data, jit, FLAGS.steps, FLAGS.rounds, FLAGS.warmup)
          for jit in settings]
  largest = rows[0]["largest_op"]
  ref = None if largest is None else reference_rate(largest, FLAGS.ref_iterations)
  game = config.game
  lines = [cpu_line(),
           f"TensorFlow {tf.__version__}, Keras {keras.__version__}; load average "
           f"at start {os.getloadavg()[0]:.2f}",
           f"{config.data.dataset}: K={config.model.num_generators} "
           f"{config.model.generator} generators, {config.model.discriminator} "
           f"discriminator, batch {game.batch_size}, update order {game.update_order}",
           "G multiply-adds per step by op: " + ", ".join(
               f"{k} {v:.1f}" for k, v in sorted(rows[0]["gmac_by_op"].items())),
           f"reference: {describe_op(largest)} alone: "
           + ("-" if ref is None else f"{ref:.1f} GFLOP/s"), ""]
  lines += table_lines(rows, ref)
  breakdown = convolution_breakdown(rows[0]["convolutions"], FLAGS.ref_iterations)
  lines += ["", "The step's convolutions run alone, one op at a time:"]
  lines += breakdown_lines(breakdown, rows[0]["step_seconds"])
  print("\n".join(lines))
  if FLAGS.json:
    out = [{k: v for k, v in r.items() if k not in ("largest_op", "convolutions")}
           for r in rows]
    files.write_json(FLAGS.json, dict(
        table="\n".join(lines), reference_gflops=ref, rows=out,
        convolutions_alone={k: dict(ops=n, gmac=m, seconds=t)
                            for k, (n, m, t) in breakdown.items()}))


if __name__ == "__main__":
  app.run(main)
