"""The confidence intervals and comparisons of `tools/toolkit/intervals.py`, and the
curve points of `tools/benchmark_image_sampling.py`."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from conftest import load_tool

TOOL = load_tool("benchmark_image_sampling")  # also puts tools/ on the path
from toolkit import intervals  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.mark.parametrize("dof", [1, 2, 4, 9, 19, 30])
def test_tabulated_t_quantiles_match_scipy(dof):
  assert intervals.t_quantile_975(dof) == pytest.approx(stats.t.ppf(0.975, dof),
                                                        abs=6e-4)


def test_mean_interval_is_the_student_t_interval():
  values = [1.0, 2.5, 2.0, 4.0, 3.5]
  m = intervals.mean_interval(values)
  low, high = stats.t.interval(0.95, 4, loc=np.mean(values),
                               scale=stats.sem(values))
  assert m["n"] == 5 and m["mean"] == pytest.approx(2.6)
  assert (m["low"], m["high"]) == pytest.approx((low, high), abs=1e-3)
  one = intervals.mean_interval([3.0])
  assert one["mean"] == 3.0 and math.isnan(one["se"]) and math.isnan(one["low"])


def test_interval_covers_the_mean_at_its_level():
  # 2000 repetitions of 5 normal draws: coverage 0.95 within three binomial
  # standard errors (0.0049 each).
  rng = np.random.default_rng(0)
  draws = rng.normal(1.0, 2.0, (2000, 5))
  covered = [(lambda m: m["low"] <= 1.0 <= m["high"])(intervals.mean_interval(d))
             for d in draws]
  assert abs(np.mean(covered) - 0.95) < 3 * math.sqrt(0.95 * 0.05 / 2000)


def test_compare_by_two_standard_errors_of_the_difference():
  base = dict(mean=10.0, se=0.3)
  # the difference's standard error is 0.5
  assert intervals.compare(dict(mean=8.9, se=0.4), base, False) == "better"
  assert intervals.compare(dict(mean=8.9, se=0.4), base, True) == "worse"
  assert intervals.compare(dict(mean=9.1, se=0.4), base, False) == "tie"
  assert intervals.compare(dict(mean=0.0, se=float("nan")), base, True) == "tie"


def test_curve_points_stay_inside_the_budget_and_above_the_smallest_run():
  settings = TOOL.sampling.SamplerSettings()
  args = TOOL.parse_args(["--model_dir", "x", "--out_dir", "y"])
  assert args.curve_steps == (0, 10, 25, 50, 100, 200) and args.seeds == 5
  budget_steps = TOOL.sampling.steps_for_budget("rep", 60, settings, 10)
  assert budget_steps == 29
  # step 0 is the shared `none` draw; 50 and more do not fit the budget
  assert TOOL.curve_points("rep", budget_steps, settings, args) == [10, 25, 29]
  low = TOOL.sampling.min_num_steps("wl", settings)
  assert TOOL.curve_points("wl", 200, settings, args) == [
      s for s in (10, 25, 50, 100) if s >= low] + [200]


def test_temperature_is_set_only_where_the_library_has_one():
  settings = TOOL.sampling.SamplerSettings()
  assert TOOL.with_temperature(settings, None, 1.0) == (settings, None)
  has_field = "temperature" in {f.name for f in dataclasses.fields(settings)}
  out = TOOL.with_temperature(settings, None, 0.5)
  if has_field:
    assert out[0].temperature == 0.5
  else:
    assert out is None and not TOOL.temperature_supported(settings, None)
