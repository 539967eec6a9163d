"""Chain states recorded along the chain (`sample_latents(record_steps=...)`,
`--sampling.record_steps`): the snapshots are the chains of shorter runs, and
`--mode=sample` scores each of them."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from shared_sampling_run import trained  # pylint: disable=unused-import
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config
from tf_stackelberg.modes.sample import sample
from tf_stackelberg.sampling import sample_latents
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.settings import SamplerSettings

SETTINGS = SamplerSettings(step_size=0.05, num_bins=8, isir_proposals=3)
RECORD = (0, 3, 10, 17)


def toy_model():
  """Three generators `G_k(z) = z + k` under a quadratic critic."""
  def generate_fn(z, k):
    return z + tf.cast(k, z.dtype)[:, tf.newaxis]

  def logit_fn(x):
    return -0.5 * tf.reduce_sum((x - 1.)**2, axis=-1)

  return LatentModel(generate_fn, logit_fn, latent_dim=2, num_generators=3)


@pytest.mark.parametrize("sampler", ["rep", "mh", "isir", "ddls"])
def test_snapshots_are_the_prior_draws_and_the_states_of_shorter_runs(sampler):
  model = toy_model()
  long = sample_latents(sampler, model, 32, 25, [5, 7], SETTINGS, chunk_steps=8,
                        record_steps=RECORD, jit_compile=False)
  assert list(long.snapshots) == list(RECORD)
  prior = sample_latents("none", model, 32, 0, [5, 7], SETTINGS, jit_compile=False)
  first = long.snapshots[0]
  np.testing.assert_array_equal(first.z, prior.z)
  np.testing.assert_array_equal(first.k, prior.k)
  np.testing.assert_array_equal(first.x, prior.x)
  np.testing.assert_allclose(first.energy, prior.energy, rtol=1e-6)
  # The last recorded step is the final state of a run of that many steps, run
  # in other chunks.
  short = sample_latents(sampler, model, 32, RECORD[-1], [5, 7], SETTINGS,
                         jit_compile=False)
  last = long.snapshots[RECORD[-1]]
  np.testing.assert_array_equal(last.z, short.z)
  np.testing.assert_array_equal(last.k, short.k)
  np.testing.assert_allclose(last.energy, short.energy, rtol=1e-6)
  # Recording cuts the chunks but leaves the run itself unchanged.
  plain = sample_latents(sampler, model, 32, 25, [5, 7], SETTINGS, chunk_steps=8,
                         jit_compile=False)
  np.testing.assert_array_equal(long.z, plain.z)
  assert plain.snapshots == {}


def test_wang_landau_snapshots_are_the_raw_chain_states():
  model = toy_model()
  result = sample_latents("wl", model, 32, 20, [1, 3], SETTINGS,
                          record_steps=(0, 4, 20), jit_compile=False)
  assert list(result.snapshots) == [0, 4, 20]  # 4 ends the warm-up of 20 steps
  energy_fn = model.energy_fn()
  for snapshot in result.snapshots.values():
    np.testing.assert_allclose(snapshot.energy,
                               energy_fn(snapshot.z, snapshot.k).numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(snapshot.x, model.generate_fn(snapshot.z,
                                                             snapshot.k).numpy())
  # The chains' states at the end are not the importance-resampled draws.
  assert not np.array_equal(result.snapshots[20].z, result.z)


def test_the_generator_alone_records_only_step_0():
  result = sample_latents("none", toy_model(), 16, 0, [2, 2], SETTINGS,
                          record_steps=(0, 10))
  assert list(result.snapshots) == [0]
  np.testing.assert_array_equal(result.snapshots[0].z, result.z)


def test_record_steps_out_of_range_are_refused():
  with pytest.raises(ValueError, match="record_steps"):
    sample_latents("rep", toy_model(), 8, 5, [1, 2], SETTINGS, record_steps=(6,))
  for bad in ((0, 700), (-1, 5), (10, 5), (5, 5)):
    with pytest.raises(ConfigError, match=r"^--sampling\.record_steps"):
      Config().replace(**{"sampling.record_steps": bad}).validate()
  # One step with a small step size is a valid short run.
  config = Config().replace(**{"sampling.steps": 1, "sampling.step_size": 0.01,
                               "sampling.record_steps": (0, 1)}).validate()
  assert config.sampling.record_steps == (0, 1)


def _tags(directory):
  tags = {}
  for name in tf.io.gfile.listdir(directory):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(event.step)
  return tags


def test_sample_mode_writes_the_metrics_along_the_chain(trained, tmp_path):
  out = tmp_path / "isir"
  summary = sample(trained.replace(**{
      "mode": "sample", "sampling.output_dir": str(out), "sampling.sampler": "isir",
      "sampling.num_samples": 200, "sampling.steps": 12,
      "sampling.isir_proposals": 4, "sampling.record_steps": (0, 5, 12),
      "runtime.jit_compile": False}).validate(), tf.distribute.get_strategy())
  with open(out / "metrics.json") as f:
    saved = json.load(f)
  assert sorted(saved["along_chain"], key=int) == ["0", "5", "12"]
  for results in saved["along_chain"].values():
    assert results["mixture"]["num_samples"] == 200
    assert np.isfinite(results["mean_energy"])
  # The last recorded step is the returned samples, which the run's results score.
  assert saved["along_chain"]["12"]["mixture"] == saved["mixture"]
  assert summary["along_chain"]["0"] == saved["along_chain"]["0"]
  tags = _tags(str(out / "logs"))
  assert sorted(tags["along_chain/mean_energy"]) == [0, 5, 12]
  assert any(tag.startswith("along_chain/") and tag != "along_chain/mean_energy"
             for tag in tags)
  assert saved["diagnostics"]["num_energy_evaluations"] == 200 * (1 + 4 * 12)
