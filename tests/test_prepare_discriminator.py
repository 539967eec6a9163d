"""`--mode=prepare`: the prepared discriminator is written beside the run's
checkpoints (never into them), keeps its best weights, warms up spectral norms, and
`--mode=sample` uses it only for the step it was prepared from."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from shared_sampling_run import copied_run
from conftest import file_digests, saved_tensors
from tf_stackelberg.app import energy_health, latent
from tf_stackelberg.app import prepare as preparation
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.metrics import discriminator_metrics as dm
from tf_stackelberg.models.discriminators.dcgan import DCGANDiscriminator
from tf_stackelberg.modes.export import export
from tf_stackelberg.modes.prepare import prepare
from tf_stackelberg.modes.sample import sample
from tf_stackelberg.training.run import Run

PREPARE = {"sampling.prepare_steps": 200, "sampling.prepare_eval_every": 40,
           "sampling.prepare_learning_rate": 1e-4, "sampling.prepare_patience": 2}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """(config, info, digests of checkpoints/ before, after), prepared in a copy of the
  shared trained run (300 steps)."""
  config = copied_run(tmp_path_factory, "prepare")
  strategy = tf.distribute.get_strategy()
  checkpoints = os.path.join(config.model_dir, "checkpoints")
  before = file_digests(checkpoints)
  config = config.replace(mode="prepare", **PREPARE).validate()
  info = prepare(config, strategy)
  return config, info, before, file_digests(checkpoints)


def _sample(config, out, **values):
  values = {"mode": "sample", "sampling.output_dir": str(out), "sampling.sampler": "none",
            "sampling.num_samples": 100, "sampling.steps": 1,
            "sampling.target_test": (), "runtime.jit_compile": False, **values}
  return sample(config.replace(**values).validate(), tf.distribute.get_strategy())


def test_prepare_writes_its_own_folder_and_leaves_the_checkpoints_byte_identical(
    prepared):
  config, info, before, after = prepared
  assert before and after == before
  path = os.path.join(config.model_dir, "prepared_discriminator", "step_300")
  names = set(os.listdir(path))
  assert {"prepared.json", "discriminator.index"} <= names
  assert any(n.startswith("discriminator.data-") for n in names)
  with open(os.path.join(path, "prepared.json")) as f:
    saved = json.load(f)
  assert saved["step"] == info["step"] == 300
  assert saved["calibration"] == info["held_out_after"]["calibration"]
  assert saved["spectral_norm"] == {"layers": 0, "warmup_iterations": 0}
  assert saved["discriminator_mode"].startswith("inference")


def test_early_stopping_keeps_the_best_weights(prepared):
  config, info, _, _ = prepared
  tuned = info["finetuning"]
  losses = np.array(tuned["held_out_losses"])
  assert losses[0, 0] == 0 and tuned["steps_run"] <= PREPARE["sampling.prepare_steps"]
  best = int(np.argmin(losses[:, 1]))
  assert tuned["best_held_out_loss"] == losses[best, 1]
  assert tuned["best_step"] == losses[best, 0]
  if tuned["stopped_early"]:  # the patience ran out: no new best at the end
    assert np.all(losses[-PREPARE["sampling.prepare_patience"]:, 1] >= losses[best, 1])
  # The saved weights are the best ones: a fresh run with them loaded has that loss.
  run = Run(config.replace(mode="sample"), tf.distribute.get_strategy())
  run.restore(require=True)
  preparation.load_prepared(run, preparation.prepared_path(config, 300))
  logit_fn = latent.gan_callables(run.gan)[1]
  real, fake = latent.calibration_sets(run)
  loss = dm.logistic_loss(energy_health.batched_logits(logit_fn, real),
                          energy_health.batched_logits(logit_fn, fake))
  assert loss == pytest.approx(tuned["best_held_out_loss"], abs=1e-6)


def test_sample_uses_the_prepared_discriminator_of_its_step(prepared, tmp_path, capsys):
  config, info, _, _ = prepared
  summary = _sample(config, tmp_path / "auto")
  assert summary["discriminator"]["source"] == "prepared"
  np.testing.assert_allclose(summary["calibration"], info["calibration"])
  assert "Discriminator: prepared" in capsys.readouterr().out
  summary = _sample(config, tmp_path / "run", **{"sampling.discriminator": "run"})
  assert summary["discriminator"]["source"] == "run"


def test_export_carries_the_prepared_discriminator(
    prepared, tmp_path, capsys):
  config, info, _, _ = prepared
  config = config.replace(**{"mode": "export", "export_dir": str(tmp_path / "export"),
                             "sampling.sampler": "none", "sampling.steps": 1})
  export(config.validate(), tf.distribute.get_strategy())
  assert "Discriminator: prepared" in capsys.readouterr().out
  exported = saved_tensors(str(tmp_path / "export" / "variables" / "variables"))
  run = Run(config, tf.distribute.get_strategy())
  run.restore(require=True)
  original = [v.numpy() for v in run.gan.discriminator.trainable_variables]
  preparation.load_prepared(run, preparation.prepared_path(config, 300))
  tuned = [v.numpy() for v in run.gan.discriminator.trainable_variables]
  assert info["finetuning"]["best_step"] > 0  # the weights did change
  def found(value):
    return any(w.shape == value.shape and np.array_equal(w, value)
               for w in exported.values())
  assert all(found(w) for w in tuned)
  assert not any(found(w) for w, t in zip(original, tuned) if not np.array_equal(w, t))


def test_a_prepared_discriminator_of_another_step_is_ignored_or_refused(
    prepared, tmp_path, capsys):
  config, _, _, _ = prepared
  other = config.replace(**{"sampling.prepared_dir": str(tmp_path / "prepared")})
  os.makedirs(tmp_path / "prepared")
  os.rename(preparation.prepared_path(config, 300), tmp_path / "prepared" / "step_200")
  try:
    summary = _sample(other, tmp_path / "auto")
    assert summary["discriminator"]["source"] == "run"
    out = capsys.readouterr().out
    assert "are of other steps (200) and are ignored" in out
    with pytest.raises(ConfigError, match=r"--sampling.discriminator=prepared: no "
                       r"prepared discriminator of step 300.*holds steps 200"):
      _sample(other, tmp_path / "forced", **{"sampling.discriminator": "prepared"})
    assert not (tmp_path / "forced").exists()
  finally:
    os.rename(tmp_path / "prepared" / "step_200", preparation.prepared_path(config, 300))


def test_preparing_a_step_twice_is_refused_and_changes_nothing(prepared):
  config, _, _, _ = prepared
  before = file_digests(config.model_dir)
  with pytest.raises(ConfigError, match="already holds a prepared discriminator of "
                     "step 300"):
    prepare(config, tf.distribute.get_strategy())
  assert file_digests(config.model_dir) == before


def test_spectral_norm_warm_up_converges_to_the_largest_singular_value():
  tf.keras.utils.set_random_seed(3)
  d = DCGANDiscriminator((16, 16, 1), (8, 16), batchnorm=False, spectral_norm=True)
  d(tf.zeros([1, 16, 16, 1]))
  layers = preparation.spectral_norm_layers(d)
  assert len(layers) == 3  # two convolutions and the logit head
  weights = [v.numpy() for v in d.trainable_variables]
  assert preparation.warm_up_spectral_norm(d, 200) == 3
  for layer in layers:
    matrix = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1])
    sigma = np.linalg.svd(matrix, compute_uv=False)[0]
    normalized = layer.normalized_kernel(training=False).numpy()
    # Divided by the converged estimate, the kernel's norm is 1.
    assert np.linalg.svd(normalized.reshape(matrix.shape), compute_uv=False)[0] == (
        pytest.approx(1.0, abs=1e-4)), sigma
  for w, v in zip(weights, d.trainable_variables):  # only the vectors change
    np.testing.assert_array_equal(w, v.numpy())


def test_the_held_out_split_is_seeded_disjoint_and_never_in_the_training_batches():
  from tf_stackelberg.app.held_out import HeldOutSplit  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.data.images import ImageData  # pylint: disable=import-outside-toplevel
  n = 500
  # Image i holds the value i (mod 256) in its first pixel and i // 256 in its second.
  images = np.zeros([n, 2, 2, 1], np.uint8)
  images[:, 0, 0, 0], images[:, 0, 1, 0] = np.arange(n) % 256, np.arange(n) // 256
  data = ImageData("toy", (images, np.zeros(n, np.int64)), class_names=("a", "b"))
  split = HeldOutSplit(data, 0.1, seed=3)
  held = set(split.held_out_indices.tolist())
  assert len(held) == 50 and held.isdisjoint(split.training_indices.tolist())
  assert held | set(split.training_indices.tolist()) == set(range(n))
  assert split.description == "50 of the 500 training images (10%)"
  again = HeldOutSplit(data, 0.1, seed=3)
  np.testing.assert_array_equal(split.held_out_indices, again.held_out_indices)
  assert set(HeldOutSplit(data, 0.1, seed=4).held_out_indices.tolist()) != held

  def index_of(batch):
    pixels = np.round((np.asarray(batch) + 1.0) * 127.5).astype(np.int64)
    return pixels[:, 0, 0, 0] + 256 * pixels[:, 0, 1, 0]

  np.testing.assert_array_equal(np.sort(index_of(split.real())),
                                np.sort(split.held_out_indices))
  seen = np.concatenate([index_of(b) for b in split.training_batches(64, 7, 30)])
  assert len(seen) == 30 * 64 and held.isdisjoint(seen.tolist())
  # Every training image is read once per epoch (7 batches of 64 of the 450).
  assert len(set(seen[:7 * 64].tolist())) == 7 * 64
