"""The evaluation reports of a trained run (`--mode=eval`): the latest checkpoint, or
every kept one, evaluated into `--eval.report_dir` (by default the run directory).

```none
eval_metrics_stepN.json   the evaluators' results at step N, without the images
NAME_stepN.png            the evaluators' images at step N
eval_curves.json          with --eval.checkpoints=all: the scalars of every step
logs/eval_checkpoints/    with --eval.checkpoints=all: the same scalars in TensorBoard
```

The run directory is only read: damaged checkpoints are skipped, never moved.
"""

import os

import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.training import checkpoints
from tf_stackelberg.training.run import Run
from tf_stackelberg.training.trainer import write_scalars


def report_dir(config):
  """Where `--mode=eval` writes its reports: `--eval.report_dir`, else the run
  directory."""
  return config.eval.report_dir or config.model_dir


def evaluate(config, strategy):
  """Evaluates the latest checkpoint of a trained run (or, with
  `--eval.checkpoints=all`, every kept checkpoint that restores); returns the metrics
  of the last.

  Reports go into `report_dir(config)`; the run directory is only read.

  Raises:
    ConfigError: the run holds no checkpoint, or none of them restores.
  """
  run = Run(config, strategy)
  if config.eval.checkpoints == "all":
    return _evaluate_all(run)
  step = run.restore(require=True, repair=False)  # evaluation only reads the run
  return _evaluate_restored(run, step)[0]


def _evaluate_restored(run, step):
  """Evaluates the restored weights; writes `eval_metrics_stepN.json` and images into
  the report directory."""
  directory = report_dir(run.config)
  results = run.evaluate()
  report = {"step": step, **evaluation.without_images(run.evaluators, results)}
  files.write_json(os.path.join(directory, f"eval_metrics_step{step}.json"), report)
  evaluation.save_images(run.evaluators, results, directory,
                         suffix=f"_step{step}")
  print(f"Checkpoint at step {step}:")
  print(evaluation.format_results(run.evaluators, results), flush=True)
  return report, results


def _evaluate_all(run):
  """Every kept checkpoint, oldest first: reports, `eval_curves.json` (the scalars of
  each step) and TensorBoard scalars under `logs/eval_checkpoints`, in the report
  directory.

  A checkpoint that does not restore (a truncated or corrupted file) is skipped with
  one line saying why, and the others are evaluated.

  Raises:
    ConfigError: there is no checkpoint, or none restores (each one's reason listed).
  """
  config = run.config
  directory = report_dir(config)
  prefixes = run.checkpoint_prefixes()
  if not prefixes:
    raise ConfigError(f"--model_dir={config.model_dir} holds no checkpoint to load")
  curves, report, skipped = [], None, []
  writer = None
  for prefix in reversed(prefixes):
    try:
      # Read errors of its files (a truncated data file raises IndexError) become
      # DamagedCheckpointError; a failed restore may leave part of the variables
      # assigned, and the next checkpoint assigns every one again.
      checkpoints._guard(run.restore_prefix, prefix)  # pylint: disable=protected-access
    except checkpoints.DamagedCheckpointError as e:
      skipped.append((prefix, str(e)))
      print(f"Skipped checkpoint {prefix}: {e}.", flush=True)
      continue
    report, results = _evaluate_restored(run, run.step)
    values = evaluation.scalars(run.evaluators, results)
    curves.append({"step": run.step, **values})
    if writer is None:
      writer = tf.summary.create_file_writer(os.path.join(directory, "logs",
                                                          "eval_checkpoints"))
    write_scalars(writer, run.step, values)
    files.write_json(os.path.join(directory, "eval_curves.json"), curves)
  if writer is not None:
    writer.close()
  if report is None:
    reasons = "; ".join(f"{os.path.basename(p)}: {r}" for p, r in skipped)
    raise ConfigError(f"no checkpoint in {run.checkpoint_dir} restores ({reasons})")
  if skipped:
    print(f"Evaluated {len(curves)} of {len(prefixes)} checkpoints; skipped "
          f"{len(skipped)} that did not restore.", flush=True)
  return report
