"""Sampling a GAN trained elsewhere (docs/design.md section 14.5): a generator and a
discriminator built with plain Keras for the ring's 2-D points, saved as a .keras file
and as a SavedModel, sampled through the Python API and `--mode=sample`, and the bad
inputs refused in one line with exit status 2.

The pair has a known answer: G(z) = z[:, :2] (so G z ~ N(0, I) in 2-D) and the
discriminator logit d(x) = 3 x_0, which favours x_0 > 0. Uncalibrated, the latent
target is p0(z) exp(3 z_0), whose z_0 is N(3, 1): the samples' mean x_0 moves from 0 to
3, and nearly all of them (Phi(3) = 99.87%) land in x_0 > 0.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main
from tf_stackelberg.app import external, latent
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.sampling.sample import sample_latents
from tf_stackelberg.sampling.settings import SamplerSettings

LATENT = 4
SLOPE = 3.0


def _generator(latent_dim=LATENT, out=2, dtype="float32"):
  z = keras.Input((latent_dim,), dtype=dtype)
  layer = keras.layers.Dense(out, use_bias=False)
  x = layer(keras.ops.cast(z, "float32") if dtype != "float32" else z)
  model = keras.Model(z, x)
  kernel = np.zeros([latent_dim, out], np.float32)
  kernel[np.arange(min(out, latent_dim)), np.arange(min(out, latent_dim))] = 1.0
  layer.set_weights([kernel])
  return model


def _discriminator(logits=1):
  x = keras.Input((2,))
  layer = keras.layers.Dense(logits)
  model = keras.Model(x, layer(x))
  layer.set_weights([np.array([[SLOPE] * logits, [0.0] * logits], np.float32),
                     np.zeros([logits], np.float32)])
  return model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  root = tmp_path_factory.mktemp("external_gan")
  paths = {"g": root / "g.keras", "d": root / "d.keras", "d_saved": root / "d_saved",
           "g_wide": root / "g_wide.keras", "d_two": root / "d_two.keras",
           "g_int": root / "g_int.keras"}
  _generator().save(paths["g"])
  _discriminator().save(paths["d"])
  _discriminator().export(str(paths["d_saved"]), verbose=False)
  _generator(out=3).save(paths["g_wide"])
  _discriminator(logits=2).save(paths["d_two"])
  _generator(dtype="int32").save(paths["g_int"])
  return {k: str(v) for k, v in paths.items()}


def test_python_api_samples_toward_the_discriminator(files):
  gan = external.load_external_gan(files["g"], files["d_saved"], LATENT, "normal",
                                   (2,), "ring")
  model = latent.latent_model(gan)  # uncalibrated: the known answer above
  assert (model.latent_dim, model.num_generators) == (LATENT, 1)
  n = 1000
  settings = SamplerSettings(step_size=0.5, joint=False)
  before = sample_latents("none", model, n, 1, tf.constant([1, 2]), settings)
  after = sample_latents("rep", model, n, 200, tf.constant([1, 2]), settings)
  x0_before, x0_after = np.asarray(before.x)[:, 0], np.asarray(after.x)[:, 0]
  # Independent chains: the mean of n draws of N(mu, 1) has standard error 1/sqrt(n).
  se = 1.0 / np.sqrt(n)
  assert abs(x0_before.mean()) < 4 * se, x0_before.mean()
  assert abs(x0_after.mean() - SLOPE) < 4 * se, x0_after.mean()
  # The share in x_0 > 0: 0.9987 expected; 4 binomial standard errors below it.
  share = (x0_after > 0).mean()
  assert share > 0.9987 - 4 * np.sqrt(0.9987 * 0.0013 / n), share


def test_python_api_refuses_bad_files(files, tmp_path):
  def error(**kw):
    args = dict(generator_file=files["g"], discriminator_file=files["d"],
                latent_dim=LATENT, latent_prior="normal", element_shape=(2,),
                dataset="ring")
    args.update(kw)
    with pytest.raises(ConfigError) as e:
      external.load_external_gan(**args)
    message = str(e.value)
    assert "\n" not in message
    return message
  assert "--sampling.generator_file" in error(generator_file=str(tmp_path / "no.keras"))
  broken = tmp_path / "broken.keras"
  broken.write_text("not a model")
  assert "cannot be loaded" in error(discriminator_file=str(broken))
  assert "--sampling.latent_dim=5" in error(latent_dim=5)
  assert "[3]" in error(generator_file=files["g_wide"])
  assert "one logit per sample" in error(discriminator_file=files["d_two"])
  assert "int32 inputs" in error(generator_file=files["g_int"])
  assert "saved_model.pb" in error(discriminator_file=str(tmp_path))


def test_cli_samples_an_external_gan(files, tmp_path, capsys):
  out = tmp_path / "out"
  # The command line's `main` in this process: the flags, their checks and the mode
  # are the command path's (the process boundary has its own tests, test_cli.py).
  status = run_main("--mode=sample", "--data.dataset=ring", "--data.size=2000",
                    f"--sampling.generator_file={files['g']}",
                    f"--sampling.discriminator_file={files['d']}",
                    f"--sampling.latent_dim={LATENT}", "--sampling.sampler=wl",
                    "--sampling.num_samples=400", "--sampling.steps=300",
                    "--sampling.calibrate=false", "--eval.num_samples=400",
                    f"--sampling.output_dir={out}")
  assert status == 0, capsys.readouterr().err[-2000:]
  with np.load(out / "samples.npz") as samples:
    assert samples["z"].shape == (400, LATENT)
    assert samples["x"].shape == (400, 2)
    assert samples["energy"].shape == (400,) and not samples["k"].any()
    x0 = samples["x"][:, 0]
  with open(out / "metrics.json") as f:
    metrics = json.load(f)
  assert {"step", "sampler", "calibration", "diagnostics", "mixture"} <= set(metrics)
  assert metrics["sampler"] == "wl" and metrics["calibration"] is None
  # The generator puts half its samples in x_0 > 0, the target 99.87%. The resampled
  # Wang-Landau draws repeat chains, so the binomial standard error is taken with the
  # Kish ESS of the weights instead of 400.
  ess = min(400.0, float(metrics["diagnostics"]["ess"]))
  share = (x0 > 0).mean()
  assert share > 0.5 + 4 * np.sqrt(0.25 / ess), (share, ess)
  assert os.path.isdir(out / "logs")


@pytest.mark.parametrize("flags, needle", [
    (("--sampling.generator_file=MISSING",), "no such file"),
    (("--sampling.generator_file=G_WIDE",), "makes samples of shape [3]"),
    (("--sampling.discriminator_file=D_TWO",), "one logit per sample"),
    (("--sampling.latent_dim=7",), "--sampling.latent_dim=7 does not fit"),
    (("--sampling.generator_file=G_INT",), "int32 inputs"),
    (("--sampling.discriminator_file=",), "needs --sampling.discriminator_file"),
    (("--sampling.latent_dim=0",), "needs --sampling.latent_dim"),
    (("--model_dir=runs/x",), "--model_dir describes a trained run"),
    (("--mode=eval",), "read by --mode=sample only"),
])
def test_cli_refuses_bad_input_in_one_line(files, tmp_path, capsys, flags, needle):
  names = {"MISSING": str(tmp_path / "missing.keras"), "G_WIDE": files["g_wide"],
           "D_TWO": files["d_two"], "G_INT": files["g_int"]}
  flags = [f.split("=")[0] + "=" + names.get(f.split("=", 1)[1], f.split("=", 1)[1])
           for f in flags]
  base = ["--mode=sample", "--data.dataset=ring", f"--sampling.generator_file={files['g']}",
          f"--sampling.discriminator_file={files['d']}", f"--sampling.latent_dim={LATENT}",
          f"--sampling.output_dir={tmp_path / 'out'}"]
  status = run_main(*base, *flags)
  err = capsys.readouterr().err.strip()
  assert status == 2, err
  assert len(err.splitlines()) == 1 and err.startswith("error: "), err
  assert needle in err, err
  assert not os.path.exists(tmp_path / "out")
