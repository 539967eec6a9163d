"""`--mode=export`: restore the latest checkpoint and write the SavedModel."""

import os

from tf_stackelberg.export.saved_model import SIGNATURES, export_gan


def default_export_dir(config):
  return config.export_dir or os.path.join(config.model_dir, "saved_model")


def export_run(config, strategy, extra_endpoints=None):
  """Exports the run in `config.model_dir`; returns the export directory."""
  from tf_stackelberg.training import Run  # pylint: disable=g-import-not-at-top
  run = Run(config, strategy)
  step = run.restore(require=True)
  path = export_gan(run.gan, default_export_dir(config), extra_endpoints)
  names = ", ".join(list(SIGNATURES) + sorted(extra_endpoints or {}))
  print(f"Exported step {step} of {config.model_dir} to {path} (signatures: {names}).",
        flush=True)
  return path
