"""The energy health report: AUC, ECE and the target test's resampling against
brute-force NumPy, the report in --mode=sample and --mode=diagnose, and the held-out
fraction refused on the command line."""

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from shared_sampling_run import trained  # pylint: disable=unused-import
from conftest import run_main
from tf_stackelberg.app import energy_health, latent
from tf_stackelberg.metrics import discriminator_metrics as dm
from tf_stackelberg.modes.diagnose import diagnose
from tf_stackelberg.modes.sample import sample


# ------------------------------------------------------------------ metrics
def brute_force_auc(real, fake):
  """P(real > fake) + P(real = fake) / 2 over every pair."""
  real, fake = np.asarray(real)[:, None], np.asarray(fake)[None, :]
  return float(np.mean((real > fake) + 0.5 * (real == fake)))


def brute_force_ece(p, y, num_bins):
  """ECE over the bins between the quantiles, one example and one bin at a time."""
  edges = [np.quantile(p, i / num_bins) for i in range(1, num_bins)]
  total = 0.0
  for b in range(num_bins):
    members = [i for i in range(len(p))
               if sum(p[i] >= e for e in edges) == b]
    if members:
      total += len(members) * abs(np.mean(y[members]) - np.mean(p[members]))
  return total / len(p)


def test_auc_matches_brute_force_with_ties():
  rng = np.random.default_rng(0)
  real = np.round(rng.normal(0.3, 1.0, 300), 1)  # rounded: many ties
  fake = np.round(rng.normal(0.0, 1.0, 200), 1)
  assert dm.roc_auc(real, fake) == pytest.approx(brute_force_auc(real, fake), abs=1e-12)


def test_auc_is_one_for_perfect_separation_and_zero_for_the_reverse():
  real, fake = np.linspace(1.0, 2.0, 50), np.linspace(-2.0, 0.5, 70)
  assert dm.roc_auc(real, fake) == 1.0
  assert dm.roc_auc(fake, real) == 0.0
  assert dm.auc_standard_error(1.0, 50, 70) == 0.0


def test_auc_of_identical_distributions_is_one_half_within_its_standard_error():
  rng = np.random.default_rng(1)
  aucs = [dm.roc_auc(rng.normal(size=200), rng.normal(size=300)) for _ in range(400)]
  se = dm.auc_standard_error(0.5, 200, 300)
  exact = math.sqrt((200 + 300 + 1) / (12 * 200 * 300))  # the null's exact value
  assert se == pytest.approx(exact, rel=0.01)
  # The mean of 400 draws is within 4 of its standard errors of 0.5, and the spread
  # of the draws is the standard error (its own relative error: 1/sqrt(2*399)).
  assert abs(np.mean(aucs) - 0.5) < 4 * se / math.sqrt(400)
  assert np.std(aucs) == pytest.approx(se, rel=4 / math.sqrt(2 * 399))
  # One draw: within 3 standard errors.
  assert abs(aucs[0] - 0.5) < 3 * se


def test_ece_matches_brute_force_and_known_values():
  rng = np.random.default_rng(2)
  p = rng.uniform(size=600)
  y = (rng.uniform(size=600) < p ** 2).astype(np.float64)  # miscalibrated
  assert dm.expected_calibration_error(p, y, 15) == pytest.approx(
      brute_force_ece(p, y, 15), abs=1e-12)
  # Ties share a bin.
  p = np.round(p, 1)
  assert dm.expected_calibration_error(p, y, 15) == pytest.approx(
      brute_force_ece(p, y, 15), abs=1e-12)
  # Everything predicted 0.8, half the labels 1: one bin, off by 0.3.
  assert dm.expected_calibration_error(np.full(100, 0.8), np.r_[np.ones(50),
                                                                np.zeros(50)]) == (
                                                                    pytest.approx(0.3))


def test_ece_of_calibrated_probabilities_is_at_its_noise_floor():
  rng = np.random.default_rng(3)
  values = []
  for _ in range(50):
    p = dm.sigmoid(rng.normal(size=3000))
    y = (rng.uniform(size=3000) < p).astype(np.float64)
    values.append(dm.expected_calibration_error(p, y))
  floor = dm.calibration_error_floor(p)
  # The floor is the expected ECE of calibrated labels: the mean of 50 draws is
  # within 4 standard errors of it.
  assert np.mean(values) == pytest.approx(floor, abs=4 * np.std(values) / math.sqrt(50))


def test_gumbel_max_picks_by_the_softmax_of_the_weights():
  logits = np.log(np.array([0.5, 0.25, 0.125, 0.125]))
  m = 40000
  rng = np.random.default_rng(4)
  gumbels = rng.gumbel(size=(m, 4))
  choices = dm.gumbel_max_choices(np.tile(logits, (m, 1)), gumbels, [1, 2, 4])
  assert np.all(choices[1] == 0)
  for n, probabilities in ((2, [2 / 3, 1 / 3]), (4, [0.5, 0.25, 0.125, 0.125])):
    counts = np.bincount(choices[n], minlength=n)
    expected = m * np.asarray(probabilities)
    # Each count within 4 binomial standard errors of its expectation.
    se = np.sqrt(expected * (1 - np.asarray(probabilities)))
    assert np.all(np.abs(counts - expected) < 4 * se), (n, counts, expected)
  # Coupled: where the pick among 4 is one of the first 2, it is the pick among 2.
  first_two = choices[4] < 2
  np.testing.assert_array_equal(choices[4][first_two], choices[2][first_two])


def test_weights_ess():
  np.testing.assert_allclose(dm.weights_ess(np.zeros([3, 8])), 8.0)
  assert dm.weights_ess(np.array([[0.0, -1000.0, -1000.0]]))[0] == pytest.approx(1.0)


def test_verdict_compares_the_largest_n_with_the_smallest_beyond_the_noise():
  rows = [{"n": n, "metrics": {"classifier": {"kid": kid, "kid_std": 0.002}}}
          for n, kid in ((1, 0.030), (64, 0.022))]
  v = energy_health.verdict(rows, 2000)
  assert v["metric"] == "kid" and v["noise"] == pytest.approx(0.002 * math.sqrt(2))
  assert v["improves"] is True and v["gain"] == pytest.approx(0.008)  # > 2 * 0.0028
  paired = {"metric": "kid", "difference": 0.0025, "std": 0.001}
  v = energy_health.verdict(rows, 2000, paired)  # the paired difference decides
  assert v["paired"] and v["gain"] == 0.0025 and v["improves"] is True
  rows[1]["metrics"]["classifier"]["kid"] = 0.0275
  assert energy_health.verdict(rows, 2000)["improves"] is False
  shares = [{"n": n, "metrics": {"mixture": {"high_quality": p}}}
            for n, p in ((1, 0.50), (64, 0.60))]
  v = energy_health.verdict(shares, 400)
  assert v["noise"] == pytest.approx(math.sqrt(0.25 / 400 + 0.24 / 400))
  assert v["improves"] is True
  assert energy_health.verdict([{"n": 1, "metrics": {}}], 10)["improves"] is None


# ------------------------------------------------------------------ a trained run
def _tags(directory):
  tags = {}
  for name in tf.io.gfile.listdir(directory):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(event.step)
  return tags


def test_sample_mode_writes_the_report_into_metrics_tensorboard_and_one_line(
    trained, tmp_path, capsys):
  out = tmp_path / "none"
  values = {"mode": "sample", "sampling.output_dir": str(out), "sampling.sampler": "none",
            "sampling.num_samples": 200, "sampling.steps": 1,
            "sampling.target_test_samples": 500, "runtime.jit_compile": False}
  summary = sample(trained.replace(**values).validate(), tf.distribute.get_strategy())
  with open(out / "metrics.json") as f:
    report = json.load(f)["energy_health"]
  assert report == json.loads(json.dumps(summary["energy_health"]))
  assert report["held_out"] == "fresh draws of the mixture"
  assert report["num_real"] == report["num_fake"] == 5000
  assert 0.5 < report["auc"] <= 1.0 and 0 < report["auc_se"] < 0.02
  # The calibration in use is the one the report fits: the same held-out sets.
  np.testing.assert_allclose(report["calibration_in_use"], report["calibration"])
  assert 0.0 <= report["ece_floor"] < 0.05 and 0.0 <= report["ece"] <= 1.0
  test = report["target_test"]
  assert [r["n"] for r in test["rows"]] == [1, 4, 16, 64]
  assert all(r["metrics"]["mixture"]["num_samples"] == 500 for r in test["rows"])
  # More candidates pick higher logits, and the weights' ESS is at most N.
  logits = [r["mean_logit"] for r in test["rows"]]
  assert logits == sorted(logits)
  assert all(1.0 <= r["weights_ess"] <= r["n"] + 1e-9 for r in test["rows"])
  assert test["verdict"]["metric"] == "high_quality"
  assert isinstance(test["verdict"]["improves"], bool)
  assert report["share_of_sampling_time"] == pytest.approx(
      report["seconds"] / report["sampling_seconds"])
  tags = _tags(str(out / "logs"))
  assert tags["health/auc"] == [0] and tags["health/calibration_slope"] == [0]
  assert tags["target_test/mixture/high_quality"] == [1, 4, 16, 64]
  lines = [l for l in capsys.readouterr().out.splitlines() if "Energy health" in l]
  assert len(lines) == 1 and "target test high_quality at N=1,4,16,64" in lines[0]
  if not test["verdict"]["improves"]:
    assert "no MCMC kernel can help with this discriminator" in lines[0]
  # One step of `none` is far cheaper than the report: the line says how to cut it.
  share = report["share_of_sampling_time"]
  assert share > energy_health.COSTLY_SHARE
  assert f"{100 * share:.1f}% of the sampling time; its cost is fixed" in lines[0]


def test_the_console_line_gives_the_share_and_a_remedy_only_when_costly():
  report = {"share_of_sampling_time": 0.055}
  assert energy_health._share(report) == ", 5.5% of the sampling time"  # pylint: disable=protected-access
  report["share_of_sampling_time"] = 0.21
  assert "lower --sampling.target_test_samples or set --sampling.health_report=false" in (
      energy_health._share(report))  # pylint: disable=protected-access
  assert energy_health._share({}) == ""  # pylint: disable=protected-access  (--mode=diagnose)


def test_the_report_is_reproducible_and_the_target_test_can_be_switched_off(
    trained, tmp_path):
  values = {"mode": "diagnose", "sampling.target_test_samples": 300,
            "runtime.jit_compile": False}
  first = diagnose(trained.replace(**{**values, "sampling.output_dir": str(
      tmp_path / "a")}).validate(), tf.distribute.get_strategy())
  again = diagnose(trained.replace(**{**values, "sampling.output_dir": str(
      tmp_path / "b")}).validate(), tf.distribute.get_strategy())
  for key in ("auc", "calibration", "ece"):
    assert first[key] == again[key]
  assert first["target_test"]["rows"] == again["target_test"]["rows"]
  off = diagnose(trained.replace(**{**values, "sampling.target_test": (),
                                    "sampling.output_dir": str(tmp_path / "c")}
                                 ).validate(), tf.distribute.get_strategy())
  assert off["target_test"] is None
  with open(tmp_path / "c" / "metrics.json") as f:
    assert json.load(f)["discriminator"]["source"] == "run"


def test_auc_of_the_report_matches_brute_force_on_its_own_sets(trained):
  config = trained.replace(mode="diagnose")
  from tf_stackelberg.training.run import Run  # pylint: disable=import-outside-toplevel
  run = Run(config, tf.distribute.get_strategy())
  run.restore(require=True)
  logit_fn = latent.gan_callables(run.gan)[1]
  report = energy_health.held_out_report(run, logit_fn)
  real, fake = latent.calibration_sets(run)
  d_real = np.asarray(logit_fn(real), np.float64)
  d_fake = np.asarray(logit_fn(fake), np.float64)
  assert report["auc"] == pytest.approx(brute_force_auc(d_real, d_fake), abs=1e-9)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("value", ["0", "nan"])
def test_held_out_fraction_outside_the_interval_is_refused_in_process(value, capsys):
  assert run_main("--mode=diagnose", "--model_dir=/nonexistent/run",
                  f"--sampling.held_out_fraction={value}") == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: --sampling.held_out_fraction") and "\n" not in err


def test_held_out_fraction_above_one_half_is_refused_by_the_command_line(tmp_path,
                                                                        capsys):
  # The command line's `main`, in this process: a config error's exit status and
  # one-line message at the process boundary have their own tests (test_cli.py).
  assert run_main("--mode=sample", f"--model_dir={tmp_path / 'run'}",
                  "--sampling.held_out_fraction=0.6") == 2
  assert capsys.readouterr().err.strip() == (
      "error: --sampling.held_out_fraction must be in (0, 0.5], got 0.6")
  assert not (tmp_path / "run").exists()


def test_paired_kid_difference_matches_the_difference_of_whole_set_kids():
  from tf_stackelberg.metrics import image_metrics  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(5)
  real = rng.normal(size=(300, 6))
  a, b = rng.normal(0.3, 1.0, (300, 6)), rng.normal(0.1, 1.0, (300, 6))
  difference, se = dm.paired_kid_difference(a, b, real)
  # Sets as large as KID's subsets: image_metrics.kid computes each on all rows.
  expected = image_metrics.kid(a, real)[0] - image_metrics.kid(b, real)[0]
  assert difference == pytest.approx(expected, rel=1e-9)
  # The jackknife error is the spread of the difference over independent draws
  # (30 draws: the spread's own relative error is about 0.13).
  draws = [dm.paired_kid_difference(rng.normal(0.3, 1.0, (300, 6)),
                                    rng.normal(0.1, 1.0, (300, 6)), real)[0]
           for _ in range(30)]
  assert se == pytest.approx(np.std(draws), rel=0.5)
  assert dm.paired_kid_difference(a, a, real) == (0.0, 0.0)
