"""`--mode=eval`: evaluate the latest checkpoint of a run
(`MODEL_DIR/eval_metrics_stepN.json` and the evaluators' images `NAME_stepN.png`)."""

from tf_stackelberg.common import files
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.training import trainer


@register_mode("eval")
def evaluate(config, strategy):
  # The report goes into the run directory: check it before the evaluation runs.
  files.check_writable_directory(config.model_dir, "--model_dir")
  return trainer.evaluate(config, strategy)
