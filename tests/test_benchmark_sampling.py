"""tools/benchmark_sampling.py end to end on a tiny setting (no timing assertions)."""

import json

import pytest

from conftest import load_tool


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  module = load_tool("benchmark_sampling")
  path = tmp_path_factory.mktemp("bench") / "report.json"
  # One compiled training call (the tool trains 100 steps per call); the rows are
  # checked for their form and budget, not for the GAN's quality.
  module.main(["--train_steps=100", "--d_steps=20", "--num_samples=200",
               "--mcmc_steps=20", "--timing_steps=5", "--timing_rounds=1",
               "--wl_bins=10", "--wl_former", f"--json={path}"])
  with open(path) as f:
    return json.load(f)


def test_every_sampler_has_a_row_at_equal_cost(report):
  rows = report["rows"]
  assert set(rows) == {"none", "mh", "ddls", "rep", "wl", "wl unweighted", "wl former",
                       "exact"}
  for name, row in rows.items():
    assert 0 <= row["modes"] <= 25, name
    assert 0.0 <= row["high_quality"] <= 100.0, name
    assert row["reverse_kl"] >= 0.0, name
  # Every MCMC sampler gets the same budget of G and D evaluations per chain.
  evals = {name: rows[name]["evaluations"]
           for name in ("mh", "ddls", "rep", "wl", "wl unweighted", "wl former")}
  assert min(evals.values()) >= 21 and max(evals.values()) - min(evals.values()) <= 1, evals


def test_kernel_timing_and_calibration_are_reported(report):
  assert len(report["calibration"]) == 2
  assert report["timing"]
