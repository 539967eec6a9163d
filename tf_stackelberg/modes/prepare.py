"""`--mode=prepare`: prepare the discriminator of the run's newest step for sampling
(fine-tuning on the frozen generators with early stopping on the held-out split,
spectral-norm warm-up, calibration on the held-out split; `app.prepare`) and write it
into `PREPARED_DIR/step_N/` (`--sampling.prepared_dir`, default
`MODEL_DIR/prepared_discriminator`). The run's checkpoints are never changed;
`--mode=sample` and `--mode=diagnose` then use the prepared discriminator
(`--sampling.discriminator`). `--sampling.prepare_method=class_ratio` prepares a
class-ratio network to use in the discriminator's place instead (`app.class_ratio`)."""

from tf_stackelberg.app import class_ratio, latent
from tf_stackelberg.app import prepare as preparation
from tf_stackelberg.common import files
from tf_stackelberg.console import text
from tf_stackelberg.modes.registry import register_mode
from tf_stackelberg.training.run import Run


@register_mode("prepare")
def prepare(config, strategy):
  """Prepares and writes the discriminator; returns the contents of prepared.json."""
  files.check_writable_directory(preparation.prepared_root(config),
                                 "--sampling.prepared_dir")
  run = Run(config, strategy)
  sampling = config.sampling
  if sampling.prepare_method == "class_ratio":
    class_ratio.check_data(run.data, config.data.dataset)
  step = run.restore(require=True)
  path = preparation.check_destination(config, step)  # before any work
  held_out = latent.held_out_split(run).description
  if sampling.prepare_method == "class_ratio":
    print(f"Preparing a class-ratio network for step {step} of {config.model_dir}: "
          f"a classifier ({sampling.ratio_classifier_epochs} epochs) and a ratio "
          f"head, early stopping on {held_out} held out (minutes on a CPU)...",
          flush=True)
  else:
    print(f"Preparing the discriminator of step {step} of {config.model_dir}: up to "
          f"{sampling.prepare_steps} updates at learning rate "
          f"{sampling.prepare_learning_rate:g}, early stopping on {held_out} held "
          "out...", flush=True)
  with files.staged_directory(path, "--sampling.prepared_dir") as staging:
    info = preparation.prepare(run, step, staging)
  print(_summary(info, step, path), flush=True)
  return info


def _summary(info, step, path):
  """The closing console line of `--mode=prepare`."""
  before, after = info["held_out_before"], info["held_out_after"]
  measured = (f"AUC {before['auc']:.3f} -> {after['auc']:.3f}, ECE {after['ece']:.3f}")
  calibration = (f"calibration d_c = {after['calibration'][0]:.3g} d "
                 f"{after['calibration'][1]:+.3g}, in "
                 f"{text.format_duration(info['seconds'])}")
  if info["method"] == "class_ratio":
    return (f"Prepared the {preparation.describe(info)} for step {step} in {path} "
            f"(held-out {measured}, against the run's discriminator's), "
            f"{calibration}.")
  tuned, sn = info["finetuning"], info["spectral_norm"]
  warmed = (f", {sn['warmup_iterations']} power iterations on {sn['layers']} "
            "spectrally normalised layers" if sn["layers"] else "")
  return (f"Prepared the discriminator of step {step} in {path}: kept update "
          f"{tuned['best_step']} of {tuned['steps_run']} (held-out loss "
          f"{before['logistic_loss']:.4f} -> {tuned['best_held_out_loss']:.4f}, "
          f"{measured}){warmed}, {calibration}.")
