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

import resource

from tf_stackelberg.console import startup

startup.import_tensorflow_quietly()

# pylint: disable=wrong-import-position
from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.config import flags as config_flags
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.game.builder import build_gan
from toolkit import machine
from toolkit import timing
# The op types the multiply-add counts cover, re-exported with the counts.
from toolkit.step_graph import CONV_OPS, MATMUL_OPS  # pylint: disable=unused-import
from toolkit.step_graph import conv_macs, count_macs, dims, train_step_graph
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
    x, w = random(dims(op.inputs[0])), random(dims(op.inputs[1]))
    return tf.function(lambda: tf.raw_ops.Conv2D(input=x, filter=w, **attrs))
  if op.type == "Conv2DBackpropInput":
    sizes = tf.constant(dims(op.outputs[0]), tf.int32)
    w, dy = random(dims(op.inputs[1])), random(dims(op.inputs[2]))
    return tf.function(lambda: tf.raw_ops.Conv2DBackpropInput(
        input_sizes=sizes, filter=w, out_backprop=dy, **attrs))
  sizes = tf.constant(dims(op.outputs[0]), tf.int32)
  x, dy = random(dims(op.inputs[0])), random(dims(op.inputs[2]))
  return tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
      input=x, filter_sizes=sizes, out_backprop=dy, **attrs))


def standalone_seconds(op, iterations):
  """Seconds of `op`'s convolution run alone (fastest of `iterations` runs)."""
  run = _reference_op(op)
  # The first run traces and warms up.
  return timing.repeat(lambda: run().numpy(), iterations, warmup=1).best_wall


def reference_rate(op, iterations):
  """GFLOP/s of `op`'s convolution run alone (fastest of `iterations` runs)."""
  return 2 * conv_macs(op) / standalone_seconds(op, iterations) / 1e9


def _signature(op):
  shapes = tuple(tuple(dims(t)) for t in list(op.inputs) + list(op.outputs)
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
                   macs + conv_macs(members[0]) * len(members) / 1e9,
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
def _fit(gan, dataset, steps):
  gan.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)


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
  with timing.Stopwatch() as warmup_fit:  # tracing and compilation happen here
    _fit(gan, dataset, warmup)
  per_round = max(1, steps // rounds)
  timed = timing.repeat(lambda: _fit(gan, dataset, per_round), rounds, warmup=0)
  step_seconds = timed.best_wall / per_round
  gflop = 2 * macs["total"] / 1e9
  return dict(xla=jit_compile, step_seconds=step_seconds,
              compile_seconds=warmup_fit.wall, peak_rss_gib=peak_memory_gib(),
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
  shapes = ", ".join(str(dims(t)) for t in op.inputs if t.shape.rank == 4)
  return f"{op.type} ({shapes}; {conv_macs(op) / 1e9:.2f} G multiply-adds)"


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
  lines = [machine.cpu_line(),
           f"TensorFlow {tf.__version__}, Keras {keras.__version__}; load average "
           f"at start {machine.load_average():.2f}",
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
