"""Forward and forward+backward time of K DCGAN generators in different layouts.

Every layout computes the same function: K CIFAR-10 DCGAN generators (by default
z(100) -> dense 8x8x256 -> ReLU -> 5x5 stride-2 transposed conv to 16x16x128 ->
ReLU -> 5x5 stride-2 transposed conv to 32x32x3 -> tanh, N(0, 0.02) weights) applied
to one shared latent batch, giving `[K, B, 32, 32, 3]`. The layouts differ in how the
K weight sets meet the data:

  list             the library's `EnsembleDCGANGenerator`: a Python list of K Keras
                   sub-models (Dense + Conv2DTranspose) traced in one call, outputs
                   stacked.
  list_subpixel    the same list, each transposed convolution written as a 3x3
                   convolution to the 4 sub-pixel phases of the output followed by a
                   depth-to-space (a stride-2 5x5 transposed convolution is exactly
                   that, with zeros where a phase has fewer than 3x3 taps).
  grouped          K folded into the channels, stacked weights [K, ...]: one dense
                   einsum, then per layer ONE grouped convolution
                   (`feature_group_count` = K) in the sub-pixel form (TF has no
                   grouped transposed convolution) and a per-group depth-to-space.
  batched_patches  K folded into the batch: 3x3 patches of every feature map
                   (`extract_patches`) times a [K, 9 in, 4 out] kernel in one
                   batched matmul, then depth-to-space.
  batched_col2im   K folded into the batch: a batched matmul of every input pixel by a
                   [K, in, 25 out] kernel gives the 25 taps of its 5x5 footprint,
                   which are overlap-added into the output (col2im).
  vectorized_map   `tf.vectorized_map` of one generator over the K weight sets.

Each is run inside `tf.function`, with XLA (`jit_compile=True`) and without, on the
same latents; its output is compared with the `list` layout (column `max|diff|`).
forward+backward is the gradient of mean(x^2) over the output with respect to all
weights, reduced to one scalar so that every gradient is computed and nothing large is
copied to the host.

Timing: a first call per configuration absorbs tracing and compilation. Then
`--rounds` rounds go round-robin over the configurations (the order reversed every
other round), each timing one forward and one forward+backward call. A configuration
whose first timed call takes more than `--slow_seconds` is timed once only. Reported:
the fastest round's wall time, the process CPU time (all threads) of that round, and
the ratio of the wall time to the best row's. On a shared machine wall times drift;
the CPU column moves less with outside load. TF op determinism is enabled as in
training runs (`--no-deterministic` turns it off).

Usage (from the repository root):
  python tools/benchmark_generator_layouts.py                  # CIFAR-10, K=10, B=64
  python tools/benchmark_generator_layouts.py --layouts list,grouped --xla off
  python tools/benchmark_generator_layouts.py --num_generators 2 --batch 8 --rounds 1
"""

import argparse
import json
import sys

from tf_stackelberg.console import startup

startup.import_tensorflow_quietly()

# pylint: disable=wrong-import-position
import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.models.generators.dcgan import EnsembleDCGANGenerator
from toolkit import machine
from toolkit import timing
# pylint: enable=wrong-import-position

LAYOUTS = ("list", "list_subpixel", "grouped", "batched_patches", "batched_col2im",
           "vectorized_map")
COLUMNS = ("layout", "XLA", "K", "batch", "forward ms", "fwd+bwd ms", "fwd+bwd cpu ms",
           "ratio", "max|diff|", "rounds")
KERNEL = 5

# Sub-pixel taps of a 5x5 stride-2 'same' transposed convolution (TF pads the
# equivalent forward convolution by 1 before and 2 after). Output row 2m + p receives
# input row m - 1 + s through kernel row t = TAPS[p][s]: phase 0 from rows m-1, m
# (taps 3, 1), phase 1 from rows m-1, m, m+1 (taps 4, 2, 0). Columns alike.
TAPS = ({0: 3, 1: 1}, {0: 4, 1: 2, 2: 0})


# ------------------------------------------------------------------ conversions
def subpixel_kernel(kernel):
  """A transposed-convolution kernel `[..., 5, 5, out, in]` as the kernel
  `[..., 3, 3, in, 4 out]` of a 'same' 3x3 convolution whose 4 output groups are the
  sub-pixel phases (py, px) in depth-to-space order."""
  cout, cin = kernel.shape[-2], kernel.shape[-1]
  lead = list(kernel.shape[:-4])
  taps = tf.experimental.numpy.moveaxis(kernel, -1, -2)  # [..., 5, 5, in, out]
  zero = tf.zeros(lead + [cin, cout], kernel.dtype)
  rows = []
  for sy in range(3):
    columns = []
    for sx in range(3):
      phases = []
      for py in range(2):
        for px in range(2):
          ty, tx = TAPS[py].get(sy), TAPS[px].get(sx)
          phases.append(zero if ty is None or tx is None else taps[..., ty, tx, :, :])
      columns.append(tf.concat(phases, axis=-1))
    rows.append(tf.stack(columns, axis=-3))
  return tf.stack(rows, axis=-4)


def _activate(h, last):
  return tf.tanh(h) if last else tf.nn.relu(h)


# ------------------------------------------------------------------ layouts
class ListLayout:
  """The library model itself."""

  def __init__(self, generator):
    self.generator = generator
    self.variables = generator.trainable_variables

  def __call__(self, z):
    return self.generator(z)


class ListSubpixelLayout:
  """The library model's members and weights, each transposed convolution in its
  sub-pixel form."""

  def __init__(self, generator):
    self.generator = generator
    self.variables = generator.trainable_variables

  def __call__(self, z):
    outputs = []
    for member in self.generator.members:
      size, c0 = member.base_size, member.channels[0]
      h = tf.nn.relu(tf.reshape(member.project(z), [-1, size, size, c0]))
      for i, deconv in enumerate(member.deconvs):
        h = tf.nn.conv2d(h, subpixel_kernel(deconv.kernel), 1, "SAME")
        h = tf.nn.depth_to_space(h, 2) + deconv.bias
        h = _activate(h, i == len(member.deconvs) - 1)
      outputs.append(h)
    return tf.stack(outputs)


class _StackedLayout:
  """Weights of the K members stacked [K, ...] into new variables."""

  def __init__(self, generator):
    members = generator.members
    first = members[0]
    self.k = len(members)
    self.base_size, self.channels = first.base_size, first.channels
    self.widths = first.channels + (first.output_channels,)

    def stack(read):
      return tf.Variable(tf.stack([tf.convert_to_tensor(read(m)) for m in members]))
    self.project_kernel = stack(lambda m: m.project.kernel)      # [K, d, F]
    self.project_bias = stack(lambda m: m.project.bias)          # [K, F]
    self.kernels = [stack(lambda m, i=i: m.deconvs[i].kernel)    # [K, 5, 5, out, in]
                    for i in range(len(first.deconvs))]
    self.biases = [stack(lambda m, i=i: m.deconvs[i].bias)       # [K, out]
                   for i in range(len(first.deconvs))]
    self.variables = ([self.project_kernel, self.project_bias] + self.kernels
                      + self.biases)

  def _project(self, z):
    h = tf.einsum("bi,kio->kbo", z, self.project_kernel) + self.project_bias[:, None]
    return tf.nn.relu(h)  # [K, B, F]


class GroupedLayout(_StackedLayout):
  """K in the channels: grouped 3x3 convolutions in the sub-pixel form."""

  def __call__(self, z):
    k, s = self.k, self.base_size
    h = tf.reshape(self._project(z), [k, -1, s, s, self.channels[0]])
    h = tf.reshape(tf.transpose(h, [1, 2, 3, 0, 4]), [-1, s, s, k * self.channels[0]])
    for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
      cin, cout = self.widths[i], self.widths[i + 1]
      grouped = tf.transpose(subpixel_kernel(kernel), [1, 2, 3, 0, 4])
      grouped = tf.reshape(grouped, [3, 3, cin, k * 4 * cout])
      y = tf.nn.conv2d(h, grouped, 1, "SAME")  # K groups of in -> 4 out channels
      y = tf.reshape(y, [-1, s, s, k, 2, 2, cout])
      y = tf.transpose(y, [0, 1, 4, 2, 5, 3, 6])  # [B, s, py, s, px, K, out]
      s *= 2
      h = tf.reshape(y, [-1, s, s, k * cout]) + tf.reshape(bias, [-1])
      h = _activate(h, i == len(self.kernels) - 1)
    out = tf.reshape(h, [-1, s, s, k, self.widths[-1]])
    return tf.transpose(out, [3, 0, 1, 2, 4])


class BatchedPatchesLayout(_StackedLayout):
  """K in the batch: im2col of 3x3 patches and one batched matmul per layer."""

  def __call__(self, z):
    k, s = self.k, self.base_size
    h = tf.reshape(self._project(z), [-1, s, s, self.channels[0]])  # [K B, s, s, c]
    for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
      cin, cout = self.widths[i], self.widths[i + 1]
      patches = tf.image.extract_patches(h, [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1],
                                         "SAME")
      patches = tf.reshape(patches, [k, -1, 9 * cin])
      kernels = tf.reshape(subpixel_kernel(kernel), [k, 9 * cin, 4 * cout])
      y = tf.matmul(patches, kernels)
      y = tf.nn.depth_to_space(tf.reshape(y, [-1, s, s, 4 * cout]), 2)
      s *= 2
      y = tf.reshape(y, [k, -1, s, s, cout]) + bias[:, None, None, None, :]
      h = tf.reshape(_activate(y, i == len(self.kernels) - 1), [-1, s, s, cout])
    return tf.reshape(h, [k, -1, s, s, self.widths[-1]])


class BatchedCol2imLayout(_StackedLayout):
  """K in the batch: a batched matmul to the 25 taps of every input pixel, then an
  overlap-add of the taps into the output."""

  def __call__(self, z):
    k, s = self.k, self.base_size
    h = tf.reshape(self._project(z), [k, -1, self.channels[0]])  # [K, B s s, c]
    for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
      cin, cout = self.widths[i], self.widths[i + 1]
      taps = tf.reshape(tf.transpose(kernel, [0, 4, 1, 2, 3]), [k, cin, 25 * cout])
      y = tf.reshape(tf.matmul(h, taps), [-1, s, s, KERNEL, KERNEL, cout])
      y = tf.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0], [0, 0]])
      phases = []
      for py in range(2):
        for px in range(2):
          phases.append(tf.add_n([y[:, sy:sy + s, sx:sx + s, ty, tx, :]
                                  for sy, ty in TAPS[py].items()
                                  for sx, tx in TAPS[px].items()]))
      out = tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2)
      s *= 2
      out = tf.reshape(out, [k, -1, s, s, cout]) + bias[:, None, None, None, :]
      h = tf.reshape(_activate(out, i == len(self.kernels) - 1), [k, -1, cout])
    return tf.reshape(h, [k, -1, s, s, self.widths[-1]])


class VectorizedMapLayout(_StackedLayout):
  """`tf.vectorized_map` of one generator over the stacked weights."""

  def __call__(self, z):
    n = len(self.kernels)

    def one(weights):
      project_kernel, project_bias = weights[:2]
      kernels, biases = weights[2:2 + n], weights[2 + n:]
      s = self.base_size
      h = tf.nn.relu(tf.matmul(z, project_kernel) + project_bias)
      h = tf.reshape(h, [-1, s, s, self.channels[0]])
      for i, (kernel, bias) in enumerate(zip(kernels, biases)):
        s *= 2
        shape = tf.stack([tf.shape(h)[0], s, s, self.widths[i + 1]])
        h = tf.nn.conv2d_transpose(h, kernel, shape, 2, "SAME") + bias
        h = _activate(h, i == n - 1)
      return h
    return tf.vectorized_map(one, [tf.convert_to_tensor(v) for v in self.variables],
                             warn=False)


_CLASSES = {"list": ListLayout, "list_subpixel": ListSubpixelLayout,
            "grouped": GroupedLayout, "batched_patches": BatchedPatchesLayout,
            "batched_col2im": BatchedCol2imLayout,
            "vectorized_map": VectorizedMapLayout}


def make_layout(name, generator):
  """The layout `name` computing `generator`'s function with its current weights."""
  return _CLASSES[name](generator)


def reference_generator(num_generators, latent_dim=100, channels=(256, 128),
                        base_size=8, output_channels=3, seed=0):
  """The library's K-generator DCGAN with N(0, 0.02) weights, built."""
  keras.utils.set_random_seed(seed)
  generator = EnsembleDCGANGenerator(num_generators, channels, base_size,
                                     output_channels, batchnorm=False, init="dcgan",
                                     name="generator")
  generator(tf.zeros([1, latent_dim]))
  return generator


# ------------------------------------------------------------------ timing
def _functions(layout, jit_compile):
  # No AutoGraph: the layouts have no tensor-dependent Python control flow.
  forward = tf.function(layout.__call__, jit_compile=jit_compile, autograph=False)

  def forward_backward(z):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(layout(z)))
    grads = tape.gradient(loss, layout.variables)
    return tf.add_n([tf.reduce_sum(g) for g in grads])
  return forward, tf.function(forward_backward, jit_compile=jit_compile,
                               autograph=False)


def _call(fn, z):
  """`fn` on `z` as a timed call of `round_robin` (which passes the round index),
  waiting for the result."""
  return lambda _: fn(z).numpy()


def _first_line(error):
  """The error's own message: TF's graph errors wrap it in a trace of the op."""
  skip = ("Graph execution error", "Detected at node", "Stack trace", "[[", "File ",
          "tf2xla conversion failed")
  lines = [line.strip() for line in str(error).splitlines()]
  message = next((line for line in lines if line and not line.startswith(skip)
                  and not line.startswith("(")), lines[0] if lines else "")
  return f"{type(error).__name__}: {message[:100]}"


def run_benchmark(num_generators=10, batch=64, layouts=LAYOUTS,
                  xla_settings=(False, True), rounds=3, slow_seconds=30.0,
                  latent_dim=100, channels=(256, 128), base_size=8, output_channels=3,
                  log=None):
  """Times every (layout, XLA) configuration; returns the table rows (dicts).

  Each row has `layout`, `xla`, `k`, `batch`, and either `error` (the configuration
  failed; `stage` is 'forward' or 'forward+backward') or `forward_ms`,
  `forward_backward_ms`, `forward_backward_cpu_ms` (fastest round), `max_abs_diff`
  (against the list layout), `rounds` and the per-round wall times; then `ratio`
  (forward+backward wall time over the best row's).
  """
  log = log or (lambda message: None)
  generator = reference_generator(num_generators, latent_dim, channels, base_size,
                                  output_channels)
  z = tf.constant(np.random.default_rng(0).normal(size=(batch, latent_dim)),
                  tf.float32)
  reference = generator(z).numpy()
  rows, active = [], []
  for name in layouts:
    layout = make_layout(name, generator)
    for xla in xla_settings:
      row = {"layout": name, "xla": xla, "k": num_generators, "batch": batch}
      rows.append(row)
      forward, forward_backward = _functions(layout, xla)
      stage = "forward"
      watch = timing.Stopwatch().start()
      try:
        row["max_abs_diff"] = float(np.abs(forward(z).numpy() - reference).max())
        stage = "forward+backward"
        forward_backward(z).numpy()
      except (tf.errors.OpError, ValueError, TypeError, NotImplementedError) as e:
        row.update(error=_first_line(e), stage=stage)
        log(f"{name:16s} xla={xla!s:5s} fails in the {stage} pass: {row['error']}")
        continue
      row["warmup_s"] = watch.stop().wall
      active.append((row, {"forward": _call(forward, z),
                           "forward_backward": _call(forward_backward, z)}))
      log(f"{name:16s} xla={xla!s:5s} traced, compiled and run once in "
          f"{row['warmup_s']:.1f} s, max|diff| {row['max_abs_diff']:.1e}")

  def too_slow(index, r, series):
    del index  # every row by the same rule
    return r > 0 and series["forward_backward"].wall[0] > slow_seconds

  def report(index, part, r, series):
    if part == "forward_backward":
      row = active[index][0]
      log(f"round {r + 1}/{rounds} {row['layout']:16s} xla={row['xla']!s:5s} forward "
          f"{1000.0 * series['forward'].wall[-1]:9.1f} ms, forward+backward "
          f"{1000.0 * series['forward_backward'].wall[-1]:9.1f} ms")

  series = timing.round_robin({i: calls for i, (_, calls) in enumerate(active)},
                              rounds, skip=too_slow, on_lap=report)
  for index, (row, _) in enumerate(active):
    forward, backward = series[index]["forward"], series[index]["forward_backward"]
    row.update(round_forward_ms=[1000.0 * s for s in forward.wall],
               round_forward_backward_ms=[1000.0 * s for s in backward.wall],
               round_forward_backward_cpu_ms=[1000.0 * s for s in backward.cpu])
    row["forward_ms"] = 1000.0 * forward.best_wall
    row["forward_backward_ms"] = 1000.0 * backward.best_wall
    row["forward_backward_cpu_ms"] = 1000.0 * backward.cpu[backward.best_index]
    row["rounds"] = len(backward)
  timed = [row for row, _ in active]
  if timed:
    best = min(row["forward_backward_ms"] for row in timed)
    for row in timed:
      row["ratio"] = row["forward_backward_ms"] / best
  return rows


def format_table(rows):
  """The rows as an aligned plain-text table."""
  def cells(row):
    head = (row["layout"], "on" if row["xla"] else "off", str(row["k"]),
            str(row["batch"]))
    if "error" in row:
      return head + (f"fails in the {row['stage']} pass: {row['error']}",)
    return head + (f"{row['forward_ms']:.0f}", f"{row['forward_backward_ms']:.0f}",
                   f"{row['forward_backward_cpu_ms']:.0f}", f"{row['ratio']:.2f}",
                   f"{row['max_abs_diff']:.1e}", str(row["rounds"]))

  body = [cells(row) for row in rows]
  # A failed row's message spans the number columns and sets none of their widths.
  widths = [max(len(c[i]) for c in [COLUMNS] + [b for b in body if len(b) > 5])
            for i in range(len(COLUMNS))]
  widths[:4] = [max(len(c[i]) for c in [COLUMNS] + body) for i in range(4)]
  left = {0, 1}

  def line(values):
    if len(values) < len(COLUMNS):  # a failed row: the message spans the numbers
      start = "  ".join(v.ljust(w) if i in left else v.rjust(w)
                        for i, (v, w) in enumerate(zip(values[:4], widths)))
      return f"{start}  {values[4]}"
    return "  ".join(v.ljust(w) if i in left else v.rjust(w)
                     for i, (v, w) in enumerate(zip(values, widths))).rstrip()
  rule = "  ".join("-" * w for w in widths)
  return "\n".join([line(COLUMNS), rule] + [line(values) for values in body])


def header_lines(num_generators, batch, deterministic):
  load = machine.load_average()
  return [machine.cpu_line(),
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}; op determinism "
          f"{'on' if deterministic else 'off'}; load average at start {load:.2f}",
          f"K={num_generators} CIFAR-10 DCGAN generators, batch {batch}, shared "
          "z(100); times: fastest round, inside tf.function"]


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description="Forward and forward+backward time of K DCGAN generators in "
                  "different layouts, with and without XLA.")
  parser.add_argument("--num_generators", type=int, default=10)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--layouts", default=",".join(LAYOUTS),
                      help=f"comma-separated subset of {', '.join(LAYOUTS)}")
  parser.add_argument("--xla", choices=("both", "on", "off"), default="both")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--slow_seconds", type=float, default=30.0,
                      help="time a configuration once if its first forward+backward "
                           "round takes longer")
  parser.add_argument("--deterministic", action=argparse.BooleanOptionalAction,
                      default=True, help="enable TF op determinism (as training)")
  parser.add_argument("--json", default="", help="also write the rows to this file")
  args = parser.parse_args(argv)
  args.layouts = tuple(v.strip() for v in args.layouts.split(",") if v.strip())
  unknown = set(args.layouts) - set(LAYOUTS)
  if unknown or not args.layouts:
    parser.error(f"--layouts: unknown {sorted(unknown)}; choose from {LAYOUTS}")
  if args.num_generators < 1 or args.batch < 1 or args.rounds < 1:
    parser.error("--num_generators, --batch and --rounds must be positive")
  return args


def main(argv=None):
  args = parse_args(argv)
  tf.get_logger().setLevel("ERROR")  # retracing notes: every configuration is new
  if args.deterministic:
    tf.config.experimental.enable_op_determinism()
  xla = {"both": (False, True), "on": (True,), "off": (False,)}[args.xla]
  header = header_lines(args.num_generators, args.batch, args.deterministic)
  print("\n".join(header), flush=True)
  rows = run_benchmark(args.num_generators, args.batch, args.layouts, xla, args.rounds,
                       args.slow_seconds,
                       log=lambda message: print(message, file=sys.stderr, flush=True))
  load = machine.load_average()
  print(format_table(rows))
  print(f"ratio: forward+backward wall time over the best row's; load average at the "
        f"end {load:.2f}")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"header": header, "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
