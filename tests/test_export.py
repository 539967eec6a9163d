"""SavedModel export: round trip against the in-memory model, CLI, and refusals."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main_printed, trained_run
from tf_stackelberg.common import salts
from tf_stackelberg.export.saved_model import ExportError, export_gan
from tf_stackelberg.modes import sample as sample_mode


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  return trained_run(tmp_path_factory.mktemp("export") / "run",
                     **{"trainer.train_steps": 100, "model.num_generators": 4})


# The `--sampling.*` settings fixed into the exported `mcmc_sample` endpoint; the
# sample mode run against it uses the same ones.
SAMPLING_SETTINGS = {"sampling.num_samples": 120, "sampling.steps": 30,
                     "sampling.wl_bins": 12}


@pytest.fixture(scope="module")
def cli_export(trained, tmp_path_factory):
  """(export directory, printed output) of `--mode=export` run through the command
  line's `main` (in this process: tracing the endpoint is what takes the time, and
  the tests below read one export)."""
  config, _ = trained
  target = tmp_path_factory.mktemp("cli_export") / "model"
  status, out = run_main_printed(
      f"--model_dir={config.model_dir}", "--mode=export", f"--export_dir={target}",
      *(f"--{name}={value}" for name, value in SAMPLING_SETTINGS.items()))
  assert status == 0, out
  return target, out


def test_round_trip_matches_the_in_memory_model(trained, tmp_path):
  config, run = trained
  path = export_gan(run.gan, str(tmp_path / "saved"))
  loaded = tf.saved_model.load(path)
  z = tf.random.stateless_normal([64, 2], [1, 2])
  k = tf.constant(np.arange(64) % 4, tf.int32)
  np.testing.assert_allclose(loaded.generate(z, k)["samples"], run.gan.generate(z, k),
                             rtol=1e-6, atol=1e-6)
  seed = tf.constant([3, 4], tf.int64)
  served = loaded.signatures["sample"](n=tf.constant(500), seed=seed)
  expected_x, expected_k = run.gan.sample(500, seed)
  np.testing.assert_array_equal(served["generator"], expected_k)
  np.testing.assert_allclose(served["samples"], expected_x, rtol=1e-6, atol=1e-6)
  assert set(np.unique(served["generator"].numpy())) == {0, 1, 2, 3}
  # Each generator of the export is a different function of z.
  outs = [loaded.generate(z, tf.fill([64], i))["samples"].numpy() for i in range(4)]
  assert all(np.abs(outs[0] - o).max() > 1e-3 for o in outs[1:])


def test_export_refuses_to_overwrite(trained, tmp_path):
  _, run = trained
  target = tmp_path / "saved"
  target.mkdir()
  (target / "keep.txt").write_text("precious")
  with pytest.raises(ExportError, match="--export_dir=.* already exists"):
    export_gan(run.gan, str(target))
  assert (target / "keep.txt").read_text() == "precious"


def test_cli_export_and_saved_model_cli(cli_export):
  target, stdout = cli_export
  assert "signatures: generate, sample, mcmc_sample" in stdout
  # The venv's console script, next to its interpreter (not the resolved symlink).
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  shown = subprocess.run([cli, "show", "--all", "--dir", str(target)],
                         capture_output=True, text=True, timeout=300)
  assert shown.returncode == 0, shown.stderr
  for text in ("signature_def['generate']", "signature_def['sample']",
               "signature_def['mcmc_sample']", "inputs['steps']", "inputs['seed']",
               "outputs['generator']"):
    assert text in shown.stdout, text
  # The MCMC endpoint serves: deterministic in its seed, valid generator indices,
  # and the states actually move (different steps, different samples).
  loaded = tf.saved_model.load(str(target))
  mcmc = loaded.signatures["mcmc_sample"]
  seed = tf.constant([5, 6], tf.int64)
  first = mcmc(n=tf.constant(64), steps=tf.constant(20), seed=seed)
  again = mcmc(n=tf.constant(64), steps=tf.constant(20), seed=seed)
  longer = mcmc(n=tf.constant(64), steps=tf.constant(40), seed=seed)
  assert first["samples"].shape == (64, 2) and first["z"].shape == (64, 2)
  np.testing.assert_array_equal(first["samples"], again["samples"])
  assert set(np.unique(first["generator"].numpy())) <= {0, 1, 2, 3}
  assert np.abs(first["z"].numpy() - longer["z"].numpy()).max() > 1e-3
  # The endpoint's samples are the generator's outputs at the returned latents.
  np.testing.assert_allclose(
      loaded.generate(first["z"], first["generator"])["samples"], first["samples"],
      rtol=1e-5, atol=1e-5)


def test_exported_mcmc_sample_equals_the_sample_mode(trained, cli_export, tmp_path):
  """`--mode=sample` and the exported `mcmc_sample` run one code path: for the same
  seed and settings they return the same latents (up to graph-rewrite rounding)."""
  config, _ = trained
  target, _ = cli_export
  # Without the energy health report (its target test draws 85 x 2000 samples): it
  # reads the discriminator only, and the chains' draws are what is compared.
  summary = sample_mode.sample(config.replace(
      mode="sample", **{"sampling.output_dir": str(tmp_path / "samples"),
                        "runtime.jit_compile": False,
                        "sampling.health_report": False},
      **SAMPLING_SETTINGS).validate(), tf.distribute.get_strategy())
  drawn = np.load(tmp_path / "samples" / "samples.npz")
  loaded = tf.saved_model.load(str(target))
  served = loaded.signatures["mcmc_sample"](
      n=tf.constant(120), steps=tf.constant(30),
      seed=tf.constant([config.seed, salts.SAMPLING], tf.int64))
  np.testing.assert_array_equal(served["generator"], drawn["k"])
  np.testing.assert_allclose(served["z"], drawn["z"], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(served["samples"], drawn["x"], rtol=1e-5, atol=1e-5)
  assert summary["diagnostics"]["num_steps"] == 30
