r"""Trains configs over several seeds and prints their end-of-training quality.

Each (config, seed) pair is trained with the command-line tool into its own model
directory (an existing directory is resumed, so an interrupted comparison continues
where it stopped), then the `metrics.json` of every run is read back and printed as one
table with a mean row per config. Optionally the scatter plots of the first seed are
put side by side into one PNG, as the paper's figure of the ring experiment.

  python tools/compare_runs.py --configs=configs/mog_ring.cfg,configs/mog_ring_branch.cfg,configs/mog_ring_gan.cfg \
      --seeds=0,1,2 --out_dir=runs/compare --figure=docs/figures/ring_comparison.png

Columns: modes found (of all), high-quality % (within 3 std of a mode), reverse KL of
the mode histogram, generators whose high-quality mass sits on a single mode, and the
training speed of the run (compilation included).
"""

import argparse
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tf_stackelberg import visualization
from tf_stackelberg.common import files
from toolkit.flagfiles import REPO


def _flat(metrics):
  """A `metrics.json` with the mixture evaluator's results at the top level."""
  return {**metrics, **metrics.get("mixture", {})}


def _name(config_path):
  return os.path.splitext(os.path.basename(config_path))[0]


def train(config_path, seed, model_dir, extra_flags):
  """Runs (or resumes) one training run; returns its final metrics."""
  command = [sys.executable, "-m", "tf_stackelberg.main", f"--flagfile={config_path}",
             f"--model_dir={model_dir}", f"--seed={seed}", *extra_flags]
  print("$ " + " ".join(command), flush=True)
  log_path = model_dir + ".log"
  os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
  with open(log_path, "w") as log:
    status = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
  if status.returncode:
    raise SystemExit(f"{config_path} seed {seed} failed (exit {status.returncode}); "
                     f"see {log_path}")
  return _flat(files.read_json(os.path.join(model_dir, "metrics.json")))


def read_metrics(model_dir, at_step=0):
  """The final metrics of a run, or its evaluation at `at_step` (no per-generator
  table then)."""
  final = _flat(files.read_json(os.path.join(model_dir, "metrics.json")))
  if not at_step:
    return final
  history = {h["step"]: h for h in files.read_json(os.path.join(model_dir,
                                                                "eval_history.json"))}
  if at_step not in history:
    raise SystemExit(f"{model_dir} has no evaluation at step {at_step}")
  entry = history[at_step]
  return {"step": at_step, "modes": entry["modes"],
          "num_modes_total": final["num_modes_total"],
          "high_quality": entry["high_quality"], "reverse_kl": entry["reverse_kl"],
          "steps_per_second": entry.get("steps_per_second")}


def single_mode_generators(metrics):
  """How many generators put their high-quality samples on exactly one mode."""
  rows = metrics.get("per_generator") or []
  return sum(1 for row in rows if len(row["modes_covered"]) == 1), len(rows)


def format_table(rows):
  header = (f"{'config':<22} {'seed':>4} {'steps':>6} {'modes':>7} {'HQ %':>6} "
            f"{'rev KL':>7} {'1-mode G':>9} {'steps/s':>8}")
  lines = [header, "-" * len(header)]
  for row in rows:
    lines.append(f"{row['config']:<22} {row['seed']:>4} {row['steps']:>6} {row['modes']:>7} "
                 f"{row['hq']:>6.1f} {row['kl']:>7.3f} {row['single']:>9} "
                 f"{row['speed']:>8}")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--configs", default="configs/mog_ring.cfg")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--out_dir", default="runs/compare")
  parser.add_argument("--figure", default="", help="side-by-side PNG of the first seed")
  parser.add_argument("--read_only", action="store_true",
                      help="only read the metrics.json of finished runs")
  parser.add_argument("--at_step", type=int, default=0,
                      help="with --read_only: report the evaluation at this step "
                      "(from eval_history.json) instead of the end of training")
  parser.add_argument("--flags", default="", help="extra flags of the command line "
                      "for every run, space separated (e.g. "
                      "'--trainer.train_steps=5000 --eval.every=500')")
  args = parser.parse_args()
  configs = [c for c in args.configs.split(",") if c]
  seeds = [int(s) for s in args.seeds.split(",") if s]
  rows, figures = [], []
  for config_path in configs:
    per_seed = []
    for seed in seeds:
      model_dir = os.path.join(args.out_dir, f"{_name(config_path)}_seed{seed}")
      if args.read_only:
        metrics = read_metrics(model_dir, args.at_step)
      else:
        metrics = train(config_path, seed, model_dir, args.flags.split())
      single, total = single_mode_generators(metrics)
      single = f"{single}/{total}" if total else "-"
      speed = metrics.get("steps_per_second")
      per_seed.append(metrics)
      rows.append({"config": _name(config_path), "seed": seed, "steps": metrics["step"],
                   "modes": f"{metrics['modes']}/{metrics['num_modes_total']}",
                   "hq": 100 * metrics["high_quality"], "kl": metrics["reverse_kl"],
                   "single": single,
                   "speed": "-" if speed is None else f"{speed:.1f}"})
      if seed == seeds[0]:
        figures.append(os.path.join(model_dir, "samples.png"))
    rows.append({"config": _name(config_path), "seed": "mean", "steps": "",
                 "modes": f"{np.mean([m['modes'] for m in per_seed]):.2f}",
                 "hq": 100 * np.mean([m["high_quality"] for m in per_seed]),
                 "kl": float(np.mean([m["reverse_kl"] for m in per_seed])),
                 "single": "", "speed": ""})
  print(format_table(rows))
  if args.figure:
    images = [tf.io.decode_png(tf.io.read_file(p), channels=3).numpy() for p in figures]
    visualization.save_png(visualization.side_by_side(images), args.figure)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
  main()
