"""Training throughput of the Stackelberg GAN: ensemble layer vs a list of sub-models.

Measures optimisation steps per second of `StackelbergGAN.fit` on the ring mixture
(batch 64, latent 2, generators 2-32-2, discriminator 2-512-256-1, Adam(2e-4, 0.5,
0.999), update order g_first) for K generators, comparing two generator
implementations that compute the same function:

  ensemble  `EnsembleMLPGenerator`: the K generators as one model whose weights are
            stacked `[K, ...]`, so every layer is a single einsum whatever K is.
  list      `ListMLPGenerator` (below): a Python list of K separate Keras MLPs built
            from `keras.layers.Dense`, their outputs stacked to `[K, B, out]`; the
            traced graph holds K copies of every op.

each with the train step compiled by XLA (`jit_compile`) and without. One more row
(when K=8 is measured) runs the ensemble with XLA at K=8 with the update order
`simultaneous`: one discriminator pass for both players instead of g_first's
generator step followed by a discriminator step on regenerated fakes.

How a configuration is timed: its model is built and compiled like
`tf_stackelberg.game.build_gan` does, and checked to really run with the XLA setting
of its row (Keras silently drops XLA under TF op determinism, which training runs
enable and so does this tool unless --no-deterministic). A warm-up `fit` then absorbs
tracing, XLA compilation and the first executions (column `compile+warmup s`, which
includes the warm-up steps themselves). Once every configuration is warmed up, each trains
`--steps` more steps, timed as `--rounds` calls of `fit(dataset, epochs=1,
steps_per_epoch=steps/rounds)` with `--steps_per_execution` train steps per compiled
call. Rounds go round-robin over all configurations, so outside load that comes and
goes during the run falls on all of them alike rather than on whichever happened to
run at the time, and the fastest round of a configuration is its steps/s.

Reading the table:
  steps/s         steps / wall seconds of the fastest timed round (higher is better).
  ms/step         its inverse.
  worst round     steps/s of the slowest round: far below steps/s means the machine
                  was busy with other work, and that row deserves less trust.
  cpu ms/step     CPU time of this process (all its threads) per step, best round.
                  Other processes' load moves it much less than wall time, so when
                  the machine is shared it is the steadier cost figure: use it to
                  cross-check ratios of steps/s that look out of line.
  ratio vs list   steps/s of an ensemble row over the list row with the same K and XLA
                  setting (> 1: the ensemble layer is faster). The list baseline runs
                  g_first only, so the simultaneous row's ratio combines the cheaper
                  update order with the ensemble layer; the line under the table
                  separates the two.
The line under the table projects a 25,000-step run of the default configuration
(ensemble, XLA, K=8, g_first) from its measured steps/s, compilation excluded.

On a shared machine absolute numbers drift from run to run; compare rows of one run.

Usage (from the repository root):
  python tools/benchmark_training.py                    # full table
  python tools/benchmark_training.py --quick            # a short smoke run
  python tools/benchmark_training.py --ks 1,8 --steps 800 --json /tmp/bench.json
"""

import argparse
import functools
import os
import sys

# Silence TensorFlow's start-up chatter; the table is the output.
from tf_stackelberg.console import startup

startup.import_tensorflow_quietly()

# pylint: disable=wrong-import-position
import keras
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.config.sections import Config
from tf_stackelberg.data import mixtures
from tf_stackelberg.game.builder import build_gan
from tf_stackelberg.models.ensemble import FanInUniform
from toolkit import timing
# pylint: enable=wrong-import-position

DATA_SHAPE = (2,)
DATASET_SIZE = 8000
PROJECTED_STEPS = 25000
SIMULTANEOUS_K = 8
COLUMNS = ("K", "generator", "XLA", "update", "compile+warmup s", "steps/s", "ms/step",
           "worst round", "cpu ms/step", "ratio vs list")


class ListMLPGenerator(keras.Model):
  """K independent MLP generators held as a Python list of Keras sub-models.

  Same function as `EnsembleMLPGenerator` (Dense, LeakyReLU, ..., Dense, tanh with
  PyTorch's fan-in initialisation), but each generator is its own `keras.Sequential`
  and the call loops over them. z `[B, latent_dim]` is shared by all generators,
  z `[K, B, latent_dim]` gives each its own batch; returns `[K, B, output_dim]`.
  """


  def __init__(self, num_generators, hidden=(32,), output_dim=2, output_activation="tanh",
               leaky_relu_slope=0.2, latent_dim=2, **kwargs):
    super().__init__(**kwargs)
    self.num_generators = num_generators
    self.output_dim = output_dim
    self.members = [self._member(i, latent_dim, hidden, output_dim, output_activation,
                                 leaky_relu_slope)
                    for i in range(num_generators)]

  @staticmethod
  def _member(index, latent_dim, hidden, output_dim, output_activation, slope):
    widths = (latent_dim,) + tuple(hidden)
    layers = []
    for i, width in enumerate(hidden):
      layers += [keras.layers.Dense(width, kernel_initializer=FanInUniform(widths[i]),
                                    bias_initializer=FanInUniform(widths[i]),
                                    name=f"dense_{i}"),
                 keras.layers.LeakyReLU(negative_slope=slope, name=f"leaky_relu_{i}")]
    activation = "tanh" if output_activation == "tanh" else None
    # One initializer object per weight, as the ensemble layer does.
    layers.append(keras.layers.Dense(output_dim, activation=activation,
                                     kernel_initializer=FanInUniform(widths[-1]),
                                     bias_initializer=FanInUniform(widths[-1]),
                                     name="output"))
    return keras.Sequential(layers, name=f"member_{index}")

  def call(self, z, training=False):
    if len(z.shape) == 3:
      outputs = [m(z[i], training=training) for i, m in enumerate(self.members)]
    else:
      outputs = [m(z, training=training) for m in self.members]
    return tf.stack(outputs, axis=0)


def _config(k, jit_compile, steps_per_execution, update_order="g_first"):
  return Config().replace(**{"model.num_generators": k,
                             "runtime.jit_compile": jit_compile,
                             "trainer.steps_per_execution": steps_per_execution,
                             "game.update_order": update_order})


def build_list_gan(config):
  """A `StackelbergGAN` around `ListMLPGenerator`, compiled as `build_gan` does."""
  model = config.model
  generator = ListMLPGenerator(model.num_generators, model.generator_hidden,
                               DATA_SHAPE[0], model.generator_output,
                               model.leaky_relu_slope, latent_dim=model.latent_dim,
                               name="generator")
  return build_gan(config, DATA_SHAPE, generator=generator)


def _check_xla(gan, config):
  """Fails if the compiled model does not run with the XLA setting its row claims."""
  if bool(gan.jit_compile) != bool(config.runtime.jit_compile):
    raise RuntimeError(
        f"asked for jit_compile={config.runtime.jit_compile} but the compiled model has "
        f"jit_compile={gan.jit_compile} (Keras turns XLA off under TF op "
        "determinism); try --no-deterministic")


def _batches(config, start_step, num_steps):
  """Exactly `num_steps` batches of the ring from `start_step` on."""
  return mixtures.make_dataset(mixtures.ring(), config.game.batch_size, config.seed,
                               dataset_size=DATASET_SIZE, shuffle=False,
                               start_step=start_step, num_steps=num_steps)


def _fit(gan, dataset, num_steps):
  gan.fit(dataset, epochs=1, steps_per_epoch=num_steps, shuffle=False, verbose=0)


def _check_steps(gan, expected):
  """Fails unless the model has run `expected` steps in all (steps/s would be computed
  from the wrong count)."""
  done = int(gan.step.numpy())
  if done != expected:
    raise RuntimeError(f"fit ran {done} steps, expected {expected}")


def _plan(ks, xla_settings, simultaneous_k):
  """(K, generator, XLA, update order) of every row, in table order."""
  plan = []
  for k in ks:
    for xla in xla_settings:
      for generator in ("ensemble", "list"):
        plan.append((k, generator, xla, "g_first"))
      if k == simultaneous_k and xla:
        plan.append((k, "ensemble", xla, "simultaneous"))
  return plan


def run_benchmark(ks=(1, 4, 8, 16), steps=2000, warmup=200, steps_per_execution=100,
                  rounds=4, simultaneous_k=SIMULTANEOUS_K, xla_settings=(True, False),
                  log=None):
  """Times every configuration; returns the table rows as a list of dicts.

  Args:
    ks: numbers of generators.
    steps: measured training steps per configuration, over all rounds.
    warmup: steps of the warm-up fit (tracing and XLA compilation happen there).
    steps_per_execution: train steps per compiled call.
    rounds: timed fits per configuration, each of `steps / rounds` steps, taken
      round-robin over all configurations; the fastest round counts.
    simultaneous_k: K of the extra ensemble + XLA row with update order
      'simultaneous', added when that K is in `ks` and XLA is measured.
    xla_settings: which `jit_compile` values to run.
    log: optional callable taking a progress string.

  Each row has `k`, `generator`, `xla`, `update_order`, `compile_warmup_s`,
  `steps_per_s` (best round), `ms_per_step`, `worst_steps_per_s`, `cpu_ms_per_step`
  (best round), `round_steps_per_s` and `round_cpu_ms_per_step` (every round, in
  order), `steps` and `ratio_vs_list` (None where there is no list row with the same
  K and XLA setting).
  """
  if rounds <= 0 or steps % rounds:
    raise ValueError(f"steps={steps} must split into rounds={rounds} equal parts")
  round_steps = steps // rounds
  for name, value in (("steps / rounds", round_steps), ("warmup", warmup)):
    if value <= 0 or value % steps_per_execution:
      raise ValueError(f"{name}={value} must be a positive multiple of "
                       f"steps_per_execution={steps_per_execution}")
  log = log or (lambda message: None)
  plan = _plan(tuple(ks), tuple(xla_settings), simultaneous_k)

  def label(row):
    return (f"K={row['k']:<2} {row['generator']:<8} xla={str(row['xla']):<5} "
            f"{row['update_order']:<12}")

  models, rows = [], []
  for k, generator, xla, update in plan:
    config = _config(k, xla, steps_per_execution, update)
    # Built outside the timed regions: drawing the fixed set is not training. Later
    # rounds read later batches, as a longer run would.
    batches = [_batches(config, warmup + r * round_steps, round_steps)
               for r in range(rounds)]
    with timing.Stopwatch() as warm:
      gan = (build_gan(config, DATA_SHAPE) if generator == "ensemble" else
             build_list_gan(config))
      _check_xla(gan, config)
      _fit(gan, _batches(config, 0, warmup), warmup)
    _check_steps(gan, warmup)
    row = {"k": k, "generator": generator, "xla": xla, "update_order": update,
           "compile_warmup_s": warm.wall, "steps": steps,
           "round_steps_per_s": [], "round_cpu_ms_per_step": []}
    log(f"warmed up {label(row)} {row['compile_warmup_s']:6.1f} s")
    models.append((gan, batches))
    rows.append(row)

  def fit_round(i, r):
    gan, batches = models[i]
    _fit(gan, batches[r], round_steps)

  def record(i, _, r, series):
    timed = series["fit"]
    _check_steps(models[i][0], warmup + len(timed) * round_steps)
    rows[i]["round_steps_per_s"].append(round_steps / timed.wall[-1])
    rows[i]["round_cpu_ms_per_step"].append(1000.0 * timed.cpu[-1] / round_steps)
    log(f"round {r + 1}/{rounds} {label(rows[i])} {round_steps / timed.wall[-1]:8.1f} "
        f"steps/s {1000.0 * timed.cpu[-1] / round_steps:7.2f} cpu ms/step")

  # Round-robin: outside load that comes and goes falls on every configuration alike.
  timing.round_robin({i: {"fit": functools.partial(fit_round, i)}
                      for i in range(len(plan))}, rounds, on_lap=record)

  for row in rows:
    row["steps_per_s"] = max(row["round_steps_per_s"])
    row["worst_steps_per_s"] = min(row["round_steps_per_s"])
    row["ms_per_step"] = 1000.0 / row["steps_per_s"]
    row["cpu_ms_per_step"] = min(row["round_cpu_ms_per_step"])
  baseline = {(r["k"], r["xla"]): r["steps_per_s"] for r in rows
              if r["generator"] == "list" and r["update_order"] == "g_first"}
  for row in rows:
    reference = baseline.get((row["k"], row["xla"]))
    row["ratio_vs_list"] = None if reference is None else row["steps_per_s"] / reference
  return rows


def find_row(rows, k, generator="ensemble", xla=True, update_order="g_first"):
  """The row of one configuration, or None if it was not measured."""
  for row in rows:
    if (row["k"], row["generator"], row["xla"], row["update_order"]) == (
        k, generator, xla, update_order):
      return row
  return None


def projected_seconds(rows, k=SIMULTANEOUS_K, num_steps=PROJECTED_STEPS):
  """Steady-state seconds of `num_steps` steps of the ensemble + XLA + g_first row."""
  row = find_row(rows, k)
  return None if row is None else num_steps / row["steps_per_s"]


def format_table(rows):
  """The rows as an aligned plain-text table (numbers right-aligned)."""
  def cells(row):
    ratio = row["ratio_vs_list"]
    return (str(row["k"]), row["generator"], "on" if row["xla"] else "off",
            row["update_order"], f"{row['compile_warmup_s']:.1f}",
            f"{row['steps_per_s']:.1f}", f"{row['ms_per_step']:.2f}",
            f"{row['worst_steps_per_s']:.1f}", f"{row['cpu_ms_per_step']:.2f}",
            "-" if ratio is None else f"{ratio:.2f}")

  body = [cells(row) for row in rows]
  widths = [max(len(c) for c in column) for column in zip(COLUMNS, *body)]
  left = {1, 2, 3}  # text columns
  def line(values):
    return "  ".join(v.ljust(w) if i in left else v.rjust(w)
                     for i, (v, w) in enumerate(zip(values, widths))).rstrip()
  rule = "  ".join("-" * w for w in widths)
  return "\n".join([line(COLUMNS), rule] + [line(values) for values in body])


def summary_lines(rows):
  """The notes printed under the table."""
  lines = []
  g_first = find_row(rows, SIMULTANEOUS_K)
  simultaneous = find_row(rows, SIMULTANEOUS_K, update_order="simultaneous")
  if g_first is not None and simultaneous is not None:
    lines.append(f"K={SIMULTANEOUS_K} ensemble XLA: simultaneous / g_first = "
                 f"{simultaneous['steps_per_s'] / g_first['steps_per_s']:.2f}x")
  projected = projected_seconds(rows)
  if projected is not None:
    lines.append(f"K={SIMULTANEOUS_K} ensemble XLA g_first: {PROJECTED_STEPS:,} steps "
                 f"projected at {projected:.0f} s ({projected / 60:.1f} min) of "
                 f"training, plus {g_first['compile_warmup_s']:.0f} s compile+warm-up")
  return lines


def _parse_ks(text):
  try:
    ks = tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError as error:
    raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from error
  if not ks or any(k <= 0 for k in ks):
    raise argparse.ArgumentTypeError(f"K values must be positive: {text!r}")
  return ks


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description="Training steps/s of the Stackelberg GAN: ensemble layer vs a list "
                  "of K Keras MLPs, with and without XLA.")
  parser.add_argument("--steps", type=int, default=None,
                      help="measured steps per configuration (default 2000; --quick 200)")
  parser.add_argument("--warmup", type=int, default=None,
                      help="warm-up steps absorbing tracing and compilation "
                           "(default 2 x steps_per_execution)")
  parser.add_argument("--ks", type=_parse_ks, default=None,
                      help="comma-separated K values (default 1,4,8,16; --quick 1,8)")
  parser.add_argument("--steps_per_execution", type=int, default=None,
                      help="train steps per compiled call (default 100; --quick 50)")
  parser.add_argument("--rounds", type=int, default=4,
                      help="timed fits the steps are split into, round-robin over the "
                           "configurations; the fastest counts (default 4)")
  parser.add_argument("--quick", action="store_true",
                      help="short run for a smoke test (explicit flags still win)")
  parser.add_argument("--deterministic", action=argparse.BooleanOptionalAction,
                      default=Config().runtime.deterministic,
                      help="enable TF op determinism, as training runs do by default "
                           "(default: %(default)s)")
  parser.add_argument("--json", metavar="PATH", default=None,
                      help="also write the settings and rows to this JSON file")
  args = parser.parse_args(argv)
  quick = args.quick
  if args.steps_per_execution is None:
    args.steps_per_execution = 50 if quick else 100
  if args.steps is None:
    args.steps = 200 if quick else 2000
  if args.warmup is None:
    args.warmup = 2 * args.steps_per_execution
  if args.ks is None:
    args.ks = (1, 8) if quick else (1, 4, 8, 16)
  spe = args.steps_per_execution
  if spe <= 0 or args.rounds <= 0:
    parser.error("--steps_per_execution and --rounds must be positive")
  if args.steps <= 0 or args.steps % (args.rounds * spe):
    parser.error(f"--steps={args.steps} must be a positive multiple of --rounds x "
                 f"--steps_per_execution = {args.rounds * spe}")
  if args.warmup <= 0 or args.warmup % spe:
    parser.error(f"--warmup={args.warmup} must be a positive multiple of "
                 f"--steps_per_execution={spe}")
  return args


def main(argv=None):
  args = parse_args(argv)
  if args.deterministic:
    tf.config.experimental.enable_op_determinism()
  keras.utils.set_random_seed(0)
  print(f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs; steps={args.steps} warmup={args.warmup} "
        f"steps_per_execution={args.steps_per_execution} rounds={args.rounds} "
        f"deterministic={args.deterministic}", flush=True)
  rows = run_benchmark(ks=args.ks, steps=args.steps, warmup=args.warmup,
                       steps_per_execution=args.steps_per_execution,
                       rounds=args.rounds,
                       log=lambda message: print(message, file=sys.stderr, flush=True))
  print()
  print(format_table(rows))
  for line in summary_lines(rows):
    print(line)
  if args.json:
    settings = {"steps": args.steps, "warmup": args.warmup, "ks": list(args.ks),
                "steps_per_execution": args.steps_per_execution,
                "rounds": args.rounds, "deterministic": args.deterministic,
                "projected_steps": PROJECTED_STEPS,
                "projected_seconds": projected_seconds(rows)}
    files.write_json(args.json, {"settings": settings, "rows": rows})
    print(f"rows written to {args.json}")


if __name__ == "__main__":
  main()
