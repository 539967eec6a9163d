"""A short Stackelberg GAN run on real MNIST, end to end: training, the classifier
evaluator, latent sampling with the joint (k, z) move, and the SavedModel's
`mcmc_sample` on images."""

import json
import os
import shutil
import types

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, file_digests, load_tool, saved_tensors
from tf_stackelberg.app import prepare as preparation
from tf_stackelberg.config.sections import Config
from tf_stackelberg.modes.export import export
from tf_stackelberg.modes.prepare import prepare
from tf_stackelberg.modes.sample import sample
from tf_stackelberg.training import trainer
from tf_stackelberg.training.run import Run

K = 10
# At the fixed seed the classifier sees 10/10 classes at steps 700, 800 and 900 of
# this run (8/10 at step 600): 800 steps leave a margin of two classes.
STEPS = 800


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory, offline_data_dir, mnist_classifier_dir):
  """configs/mnist.cfg, narrower (generators 100-64-256-784, D 784-256-128) and
  short: 800 steps of batch 64 of 10 generators with the generator-classifier head."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.config import flags as config_flags  # pylint: disable=import-outside-toplevel
  values = flags.FlagValues()
  config_flags.define_flags(values)
  values(["prog", f"--flagfile={os.path.join(REPO, 'configs', 'mnist.cfg')}"])
  config = config_flags.config_from_flags(values).replace(**{
      "model_dir": str(tmp_path_factory.mktemp("mnist") / "run"),
      "data.source": "offline", "data.data_dir": offline_data_dir[0],
      "eval.classifier_dir": mnist_classifier_dir,
      "model.generator_hidden": (64, 256), "model.discriminator_hidden": (256, 128),
      "game.batch_size": 64, "trainer.train_steps": STEPS, "eval.every": STEPS,
      "eval.num_samples": 2000}).validate()
  metrics = trainer.train(config, tf.distribute.get_strategy())
  return config, metrics


def test_short_mnist_run_spreads_samples_over_at_least_8_classes(mnist_run):
  config, metrics = mnist_run
  result = metrics["classifier"]
  histogram = np.asarray(result["label_histogram"])
  assert histogram.sum() == 2000
  assert np.count_nonzero(histogram) >= 8, histogram
  # Every generator makes samples, and the table of which generator makes which
  # class accounts for each of them.
  table = np.asarray(result["per_generator_labels"])
  assert table.shape == (K, 10) and table.sum() == 2000
  np.testing.assert_array_equal(table.sum(axis=0), histogram)
  assert os.path.exists(os.path.join(config.model_dir, "samples.png"))


def test_wang_landau_sampling_on_the_mnist_gan(mnist_run, tmp_path):
  # MALA (rep) through the image GAN is the SavedModel test's below; every sampler
  # runs from the command path on the mixtures (tests/test_sample_mode.py).
  config, _ = mnist_run
  out = tmp_path / "wl"
  summary = sample(config.replace(**{
      "mode": "sample", "sampling.sampler": "wl", "sampling.output_dir": str(out),
      "sampling.num_samples": 200, "sampling.steps": 40, "sampling.wl_bins": 10,
      "sampling.target_test_samples": 300, "sampling.target_test": (1, 4),
      "runtime.jit_compile": False}).validate(), tf.distribute.get_strategy())
  # The energy health report on images: KID decides, paired over the picks (two
  # candidate counts make the comparison; each further one generates N x 300 images).
  verdict = summary["energy_health"]["target_test"]["verdict"]
  assert verdict["metric"] == "kid" and verdict["paired"]
  with np.load(out / "samples.npz") as data:
    assert data["x"].shape == (200, 28, 28, 1) and data["z"].shape == (200, 100)
    assert np.abs(data["x"]).max() <= 1.0 and np.isfinite(data["energy"]).all()
    assert set(np.unique(data["k"])) <= set(range(K))
  assert summary["classifier"]["num_samples"] == 200
  assert summary["diagnostics"]["generator_acceptance_rate"] > 0  # joint (k, z) moves
  for name in ("samples.png", "energy_histogram.png", "metrics.json"):
    assert (out / name).exists()
  with open(out / "metrics.json") as f:
    assert json.load(f)["classifier"]["label_histogram"] == (
        summary["classifier"]["label_histogram"])


@pytest.fixture(scope="module")
def class_ratio_run(mnist_run, tmp_path_factory):
  """(config, info, digests of checkpoints/ before, after): a copy of the run with a
  class-ratio network prepared (`--sampling.prepare_method=class_ratio`, a 1-epoch
  classifier, at most 3 epochs of the head)."""
  config, _ = mnist_run
  model_dir = tmp_path_factory.mktemp("class_ratio") / "run"
  shutil.copytree(config.model_dir, model_dir)
  config = config.replace(**{"model_dir": str(model_dir), "mode": "prepare",
                             "sampling.prepare_method": "class_ratio",
                             "sampling.ratio_classifier_epochs": 1,
                             "sampling.ratio_head_epochs": 3}).validate()
  checkpoints = os.path.join(config.model_dir, "checkpoints")
  before = file_digests(checkpoints)
  info = prepare(config, tf.distribute.get_strategy())
  return config, info, before, file_digests(checkpoints)


def test_a_class_ratio_network_is_prepared_beside_the_checkpoints(class_ratio_run):
  config, info, before, after = class_ratio_run
  assert before and after == before
  path = os.path.join(config.model_dir, "prepared_discriminator", f"step_{STEPS}")
  assert set(os.listdir(path)) == {"prepared.json", "class_ratio.keras"}
  with open(os.path.join(path, "prepared.json")) as f:
    assert json.load(f)["method"] == info["method"] == "class_ratio"
  # One epoch of the strided CNN classifies held-out MNIST digits.
  assert info["class_ratio"]["classifier"]["held_out_accuracy"] > 0.9
  head = info["class_ratio"]["head"]
  assert head["best_held_out_loss"] < head["held_out_losses"][0]


def test_the_benchmark_tool_samples_the_prepared_network(class_ratio_run):
  config, _, _, _ = class_ratio_run
  tool = load_tool("benchmark_image_sampling")
  run = Run(config.replace(mode="sample").validate(), tf.distribute.get_strategy())
  step = run.restore(require=True)
  model, about = tool.discriminator_model(
      run, step, types.SimpleNamespace(discriminator="prepared"))
  assert about.startswith("prepared (class_ratio")
  x = run.gan.generate(tf.zeros([4, run.gan.latent_dim]), tf.range(4))
  network = preparation.load_prepared(
      run, preparation.prepared_path(config, step))[1]
  np.testing.assert_allclose(model.logit_fn(x), network(x), rtol=1e-5, atol=1e-5)


def test_saved_model_mcmc_sample_returns_images(class_ratio_run, tmp_path, capsys):
  """The SavedModel of the run with its class-ratio network: `mcmc_sample` runs MALA
  (rep) through the image generator and the network, whose weights it holds (the
  Wang-Landau endpoint is tested on the mixtures, tests/test_mcmc_endpoint.py)."""
  config, _, _, _ = class_ratio_run
  export_dir = str(tmp_path / "export")
  export(config.replace(**{"mode": "export", "export_dir": export_dir,
                           "sampling.sampler": "rep",
                           "sampling.steps": 20}).validate(),
         tf.distribute.get_strategy())
  assert "class-ratio network" in capsys.readouterr().out
  loaded = tf.saved_model.load(export_dir)
  out = loaded.signatures["mcmc_sample"](n=tf.constant(16), steps=tf.constant(20),
                                         seed=tf.constant([0, 1], tf.int64))
  assert out["samples"].shape == (16, 28, 28, 1)
  assert out["generator"].shape == (16,) and out["z"].shape == (16, 100)
  assert np.isfinite(out["energy"].numpy()).all()
  exported = saved_tensors(os.path.join(export_dir, "variables", "variables"))
  path = os.path.join(config.model_dir, "prepared_discriminator", f"step_{STEPS}")
  network = tf.keras.models.load_model(os.path.join(path, "class_ratio.keras"))
  assert all(any(w.shape == v.shape and np.array_equal(w, v) for v in exported.values())
             for w in (x.numpy() for x in network.weights))


def test_image_sampling_benchmark_on_the_mnist_gan(mnist_run, tmp_path, capsys):
  config, _ = mnist_run
  tool = load_tool("benchmark_image_sampling")
  budget, seeds = 17, 2
  # One sampler: every sampler run traces its own chains, and the rows, curves,
  # seeds, intervals and verdicts are the tool's whatever the sampler. i-SIR, the
  # cheapest to trace (no gradient): 2 steps of 8 proposals and the start cost 17
  # evaluations. Wang-Landau on this GAN is the test above; the budget of each
  # sampler, its warm-up included, is tested against `sample_latents` in
  # tests/test_sampling_budget.py.
  # One temperature, T = 0.5: the rows of T = 1 are those of the temperature-free
  # path that every other sampling test takes.
  tool.main(["--model_dir", config.model_dir, "--out_dir", str(tmp_path),
             "--chains", "40", "--budget", str(budget), "--samplers", "isir",
             "--seeds", str(seeds), "--curve_steps", "0", "--temperatures", "0.5",
             "--no-jit_compile", "--chunk_steps", "16", "--num_real", "500",
             "--finetune_steps", "5",
             "--classifier_dir", config.eval.classifier_dir])
  with open(tmp_path / tool.JSON_NAME) as f:
    (gan,) = json.load(f)["gans"]
  assert gan["jit_compile"] is False and gan["step"] == STEPS
  assert gan["finetune_steps"] == 5 and np.isfinite(gan["finetune_loss"]).all()
  assert gan["seeds"] == [0, 1]
  # The library has a temperature (`--sampling.temperature`), so T = 0.5 runs.
  assert gan["temperature_supported"] and gan["temperatures"] == [0.5]
  rows = gan["rows"]
  names = ["none"] + [tool.row_name("isir", t) for t in gan["temperatures"]]
  assert list(rows) == names  # `none` is added as the baseline
  assert {"score", "FID", "KID", "label KL"} <= set(gan["metrics"])
  assert rows["none"]["evaluations"] == 1
  for name in names[1:]:
    row = rows[name]
    # every sampler gets the whole budget, and no more
    assert budget - 2 <= row["evaluations"] <= budget, row
    assert row["generators_used"] > 1  # joint (k, z) moves
    # the curve: step 0 is the generator alone, the last point the budget row
    curve = row["curve"]
    assert curve[0]["steps"] == 0 and curve[0]["metrics"] == rows["none"]["metrics"]
    assert curve[-1]["steps"] == row["steps"] and curve[-1]["metrics"] == row["metrics"]
    assert set(row["verdict"]) == set(gan["metrics"])
    assert set(row["verdict"].values()) <= {"better", "worse", "tie"}
    assert [c["steps"] for c in curve] == [0, row["steps"]]
  for row in rows.values():
    assert sum(row["label_histogram"]) == 40
    assert row["energy_q01"] <= row["energy_q99"]
    for label in gan["metrics"]:
      m = row["metrics"][label]
      values = np.array(m["values"])
      assert m["n"] == seeds and np.isfinite(values).all()
      # the 95% t-interval over two seeds: 12.706 standard errors either side
      se = values.std(ddof=1) / np.sqrt(seeds)
      np.testing.assert_allclose([m["mean"], m["se"]], [values.mean(), se],
                                 rtol=1e-9, atol=1e-12)
      np.testing.assert_allclose(m["high"] - m["mean"], 12.706 * se, rtol=1e-9,
                                 atol=1e-12)
    # different seeds draw different samples
    assert np.ptp(row["metrics"]["FID"]["values"]) > 0
  assert os.path.exists(gan["energy_histogram_png"])
  assert os.path.getsize(gan["curves_png"]) > 10000
  with open(tmp_path / tool.MARKDOWN_NAME, encoding="utf-8") as f:
    markdown = f.read()
  for name in names:
    assert sum(line.startswith(f"| {name.split()[0]} |")
               for line in markdown.splitlines()) >= 1
  table = [line for line in markdown.splitlines() if line.startswith("| ")]
  assert table[0].startswith("| sampler | T | steps |") and len(table) >= 2 + len(names)
  assert "±" in table[2] and "AVX-512" in markdown
  assert "XLA off" in capsys.readouterr().out
