"""`--mode=train`: start a run, or resume it from its latest checkpoint."""

from tf_stackelberg.common import files
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.training import trainer


@register_mode("train", uses_trained_run=False)
def train(config, strategy):
  files.check_writable_directory(config.model_dir, "--model_dir")
  return trainer.train(config, strategy)
