"""`--mode=export`: restore the latest checkpoint and write the SavedModel, with the
`mcmc_sample` endpoint: the `--sampling.sampler` chains of `--mode=sample`, traced into
the graph with the calibration and the `--sampling.*` settings fixed at export.

The discriminator exported, and the one the endpoint's chains use, is the one
`--sampling.discriminator` chooses, as for `--mode=sample`: by default the prepared
discriminator of the run's newest step (`--mode=prepare`) when there is one, with the
calibration it was fitted with; a class-ratio network prepared in its place is saved
with the endpoint that uses it."""

import os
import time

from tf_stackelberg.app import latent, prepare
from tf_stackelberg.console import text
from tf_stackelberg.export.mcmc_endpoint import mcmc_sample_endpoint
from tf_stackelberg.export.saved_model import SIGNATURES, check_destination, export_gan
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.training.run import Run


def default_export_dir(config):
  return config.export_dir or os.path.join(config.model_dir, "saved_model")


@register_mode("export")
def export(config, strategy):
  """Exports the run in `config.model_dir`; returns the export directory."""
  path = default_export_dir(config)
  latent.check_steps(config.sampling)
  check_destination(path)  # before the model is built and calibrated
  started = time.monotonic()
  run = Run(config, strategy)
  step = run.restore(require=True)
  sampling = config.sampling
  # Says which discriminator before calibrating it, and restores a prepared one into
  # `run.gan`, so the export carries it.
  calibration, _, network = prepare.discriminator_for_sampling(run, step, config)
  endpoint = mcmc_sample_endpoint(latent.latent_model(run.gan, calibration, network),
                                  latent.sampler_settings(sampling), sampling.sampler)
  extra = {"mcmc_sample": endpoint}
  names = ", ".join(list(SIGNATURES) + sorted(extra))
  # Tracing the signatures is quiet and takes from seconds (mixtures) to about a
  # minute (image GANs on a CPU): say what is under way.
  print(f"Exporting step {step} of {config.model_dir}: tracing {names} and writing "
        f"{path} (up to a minute for an image GAN on a CPU)...", flush=True)
  path = export_gan(run.gan, path, extra,
                    tracked=[network] if network is not None else ())
  print(f"Exported step {step} of {config.model_dir} to {path} (signatures: {names}) "
        f"in {text.format_duration(time.monotonic() - started)}.", flush=True)
  return path
