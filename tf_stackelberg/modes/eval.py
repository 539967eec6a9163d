"""`--mode=eval`: evaluate the latest checkpoint of a run (or every kept one) and
write the report (`eval_metrics_stepN.json` and the evaluators' images `NAME_stepN.png`)
into `--eval.report_dir`, by default the run directory."""

from tf_stackelberg.common import files
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.training import trainer


@register_mode("eval")
def evaluate(config, strategy):
  # Where the report goes is checked before the evaluation runs.
  flag = "--eval.report_dir" if config.eval.report_dir else "--model_dir"
  files.check_writable_directory(trainer.report_dir(config), flag)
  return trainer.evaluate(config, strategy)
