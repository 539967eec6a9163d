"""A config's training step on published accelerator figures, from what is measured
here.

The inputs are counted, not assumed: the FLOPs, parameters, saved activations and ops
of one traced training step (`count_model`), and the fraction of a dense matrix
product's rate (GFLOP per CPU second, `matmul_gflops`) that a measured training row
reached on this CPU (`efficiency`). `projection` applies that fraction to the
vendors' peak figures (`HARDWARE`) and adds memory traffic, the ring all-reduce of the
gradients and per-op host overhead; `projection_lines` prints it with every
assumption named.
"""

from toolkit import timing

# The family whose config the projection is about (counted with the training rows).
PROJECTED = "cifar_full"
# Training rows whose efficiency stands for the projected config's, best first.
EFFICIENCY_ROWS = ("cifar_full", "cifar", "mnist", "mog")
_NO_KERNEL = ("Const", "Placeholder", "NoOp")

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


# ------------------------------------------------------------- model accounting
def count_model(config, data_shape):
  """FLOPs, parameters, saved activations and ops of one training step of `config`
  (float32, one device), from its traced train step."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.game.builder import build_gan  # pylint: disable=import-outside-toplevel
  from toolkit import step_graph  # pylint: disable=import-outside-toplevel
  config = config.replace(**{"runtime.jit_compile": False,
                             "runtime.precision": "float32",
                             "trainer.steps_per_execution": 1})
  gan = build_gan(config, data_shape)
  batch = config.game.batch_size
  graph = step_graph.train_step_graph(gan, tf.zeros([batch, *data_shape]))
  ops = step_graph.step_ops(graph)
  macs = step_graph.count_macs(graph)

  def size(variables):
    return int(sum(v.shape.num_elements() for v in variables))
  # Update ops are named in their optimizer's scope.
  players = {gan.g_optimizer.name: "generator update",
             gan.d_optimizer.name: "discriminator update"}
  saved = {players.get(scope, scope): n for scope, n in step_graph.saved_activations(ops).items()}
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
  series = timing.repeat(lambda: product(a).numpy(), repeats, warmup=1)
  flop = 2 * size ** 3 / 1e9
  return {"wall": flop / series.best_wall, "cpu": flop / series.best_cpu}



# ------------------------------------------------------------- the projection
def efficiency(report):
  """{precision: {'fraction', 'family', ...}}: GFLOP per CPU second of the cifar row
  (else the largest measured training row) in that precision's column over those of
  a dense matrix product in the same precision on this CPU. CPU seconds on both
  sides, so that the fraction does not depend on the load of the moment."""
  counts = report.get("counts") or {}
  models, matmul = counts.get("models", {}), counts.get("matmul_gflops", {})
  rows = [f for f in EFFICIENCY_ROWS if f in report["cells"] and f in models]
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


def projection_lines(report, flagfile, hardware=HARDWARE):
  """The projection of the config `flagfile` (the `PROJECTED` row's) as text (from
  `projection`), or a line saying why there is none."""
  models = (report.get("counts") or {}).get("models", {})
  model = models.get(PROJECTED)
  if model is None:
    return ["Projection: no model counts (the counting process failed or was skipped)."]
  fractions = efficiency(report)
  rows = projection(model, {p: v["fraction"] for p, v in fractions.items()}, hardware)
  params = model["params_generator"] + model["params_discriminator"]
  saved = model["saved_activation_elements"]
  lines = [
      f"Projection for {flagfile} (global batch "
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
