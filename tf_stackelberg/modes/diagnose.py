"""`--mode=diagnose`: the energy health report alone (`app.energy_health`): the
discriminator's held-out AUC, calibration and expected calibration error, and the
target test, written into `--sampling.output_dir` (default `MODEL_DIR/diagnose`):

```none
metrics.json   {"step", "discriminator", "energy_health": the report}
logs/          TensorBoard: health/* and target_test/* (x axis = N candidates)
```

The directory is staged and renamed into place when complete; an existing, non-empty
one is never replaced. The discriminator is the one `--sampling.discriminator`
chooses (`app.prepare.discriminator_for_sampling`)."""

import os

from tf_stackelberg.app import energy_health, latent, prepare
from tf_stackelberg.common import files
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.training.run import Run


def output_dir(config):
  return config.sampling.output_dir or os.path.join(config.model_dir, "diagnose")


@register_mode("diagnose")
def diagnose(config, strategy):
  """Writes the energy health report of the run in `config.model_dir`; returns it."""
  out_dir = output_dir(config)
  with files.staged_directory(out_dir, "--sampling.output_dir") as staging:
    run = Run(config, strategy)
    step = run.restore(require=True)
    calibration, source, network = prepare.discriminator_for_sampling(run, step,
                                                                      config)
    logit_fn = latent.gan_callables(run.gan, network)[1]
    report = energy_health.energy_health(run, logit_fn, calibration, config.sampling,
                                         step)
    files.write_json(os.path.join(staging, "metrics.json"),
                     {"step": step, "discriminator": source, "energy_health": report})
    with files.storage_errors(os.path.join(staging, "logs")):
      energy_health.write_summaries(os.path.join(staging, "logs"), report)
    print(energy_health.console_line(report, _whose(source)), flush=True)
  print(f"Wrote {out_dir}", flush=True)
  return report


def _whose(source):
  return "the prepared" if source["source"] == "prepared" else "the run's"
