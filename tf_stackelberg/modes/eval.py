"""`--mode=eval`: evaluate the latest checkpoint of a run (or every kept one) and
write the report (`eval_metrics_stepN.json` and the evaluators' images `NAME_stepN.png`)
into `--eval.report_dir`, by default the run directory."""

from tf_stackelberg.app import evaluation_reports
from tf_stackelberg.common import files
from tf_stackelberg.common.errors import StorageError
from tf_stackelberg.modes.registry import register_mode


@register_mode("eval")
def evaluate(config, strategy):
  # Where the report goes is checked before the evaluation runs.
  if config.eval.report_dir:
    files.check_writable_directory(config.eval.report_dir, "--eval.report_dir")
  else:
    try:
      files.check_writable_directory(config.model_dir, "--model_dir")
    except StorageError as e:
      raise StorageError(f"{e}; --eval.report_dir=DIR writes the report elsewhere and "
                         "only reads the run") from e
  return evaluation_reports.evaluate(config, strategy)
