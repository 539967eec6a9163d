"""`--mode=sample` on a trained run: outputs, TensorBoard diagnostics, refusals."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from shared_sampling_run import trained  # pylint: disable=unused-import
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.modes.sample import UnhealthySampling, sample


def _sample(config, output_dir, **overrides):
  """Runs --mode=sample; `overrides` by flag name ('sampling.sampler')."""
  values = {"mode": "sample", "sampling.output_dir": str(output_dir),
            "sampling.num_samples": 200, "sampling.steps": 40,
            "runtime.jit_compile": False,
            # The energy health report has its own tests (test_energy_health.py).
            "sampling.health_report": False}
  values.update(overrides)
  return sample(config.replace(**values).validate(), tf.distribute.get_strategy())


def _tags(directory):
  tags = {}
  for name in tf.io.gfile.listdir(directory):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(event.step)
  return tags


def test_wang_landau_sampling_writes_samples_metrics_plot_and_summaries(trained,
                                                                        tmp_path):
  out = tmp_path / "wl"
  summary = _sample(trained, out, **{"sampling.sampler": "wl", "sampling.wl_bins": 10})
  with np.load(out / "samples.npz") as data:
    assert data["z"].shape == (200, 2) and data["x"].shape == (200, 2)
    assert data["k"].shape == (200,) and set(np.unique(data["k"])) <= set(range(4))
    assert np.isfinite(data["energy"]).all()
  with open(out / "metrics.json") as f:
    saved = json.load(f)
  assert saved["sampler"] == "wl" and saved["mixture"]["num_samples"] == 200
  assert len(saved["calibration"]) == 2  # (a, b) of the calibrated logit
  assert 0.0 < saved["diagnostics"]["acceptance_rate"] <= 1.0
  assert len(saved["diagnostics"]["theta"]) in (10, 200)
  assert summary["mixture"]["modes"] == saved["mixture"]["modes"]
  # The chains' final states, not reweighted, scored by the same evaluators; the
  # states themselves stay out of metrics.json.
  assert saved["unweighted"]["mixture"]["num_samples"] == 200
  assert set(saved["unweighted"]["mixture"]) == set(saved["mixture"])
  assert not any(key.startswith("unweighted") for key in saved["diagnostics"])
  png = tf.io.decode_png(tf.io.read_file(str(out / "samples.png")))
  assert png.shape[-1] == 3
  histogram = tf.io.decode_png(tf.io.read_file(str(out / "energy_histogram.png")))
  assert histogram.shape == (320, 480, 3)
  tags = _tags(str(out / "logs"))
  assert len(tags["chain/acceptance"]) == 40 and len(tags["chain/mean_energy"]) == 40
  assert tags["per_bin/wl_theta"] == list(range(10))
  assert "final/energy" in tags and "final/ess" in tags


@pytest.mark.parametrize("sampler", ["rep", "ddls", "mh", "none"])
def test_baseline_samplers_run_from_the_command_path(trained, tmp_path, sampler):
  summary = _sample(trained, tmp_path / sampler,
                    **{"sampling.sampler": sampler, "sampling.calibrate": False})
  assert summary["calibration"] is None
  assert summary["mixture"]["num_samples"] == 200
  assert "unweighted" not in summary  # only Wang-Landau reweights
  with np.load(tmp_path / sampler / "samples.npz") as data:
    assert np.isfinite(data["x"]).all()
  # Every sampler draws its visited energies ('none': the prior draws' energies).
  assert (tmp_path / sampler / "energy_histogram.png").exists()


def test_existing_samples_are_never_overwritten(trained, tmp_path):
  out = tmp_path / "once"
  _sample(trained, out, **{"sampling.sampler": "none"})
  before = (out / "samples.npz").read_bytes()
  with pytest.raises(ConfigError, match="--sampling.output_dir=.* is a directory that "
                     "holds files; .* e.g. --sampling.output_dir=.*once_2$"):
    _sample(trained, out, **{"sampling.sampler": "rep"})
  assert (out / "samples.npz").read_bytes() == before


def test_too_few_steps_are_refused_before_any_work(trained, tmp_path):
  with pytest.raises(ConfigError, match=r"--sampling.steps=1 is too few for "
                     r"--sampling.sampler=wl: it needs at least 2"):
    _sample(trained, tmp_path / "one", **{"sampling.steps": 1})
  assert not (tmp_path / "one").exists()
  # One step is enough for the other samplers.
  summary = _sample(trained, tmp_path / "rep", **{"sampling.sampler": "rep",
                                                  "sampling.steps": 1})
  assert summary["diagnostics"]["num_steps"] == 1


def test_an_energy_range_never_reached_fails_the_health_check_and_keeps_outputs(
    trained, tmp_path):
  out = tmp_path / "unreached"
  with pytest.raises(UnhealthySampling, match="--sampling.wl_energy_range") as error:
    _sample(trained, out, **{"sampling.wl_energy_range": (100.0, 200.0),
                             "sampling.calibrate": False})
  assert f"outputs kept in {out}" in str(error.value)
  with open(out / "metrics.json") as f:
    problems = json.load(f)["diagnostics"]["problems"]
  assert problems and all(p in str(error.value) for p in problems)
  assert (out / "samples.npz").exists()
