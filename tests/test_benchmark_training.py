"""Tests for tools/benchmark_training.py on a tiny setting (no timing assertions)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from conftest import load_tool


@pytest.fixture(scope="module")
def bench():
  return load_tool("benchmark_training")


@pytest.fixture(scope="module")
def rows(bench):
  return bench.run_benchmark(ks=(1, 2), steps=20, warmup=10, steps_per_execution=10,
                             rounds=2, simultaneous_k=2)


def test_list_generator_matches_the_ensemble_interface(bench):
  generator = bench.ListMLPGenerator(3, hidden=(32,), output_dim=2)
  assert generator.num_generators == 3
  shared = generator(tf.zeros([5, 2]))
  assert shared.shape == (3, 5, 2)
  assert generator(tf.zeros([3, 5, 2])).shape == (3, 5, 2)
  # Three independent 2-32-2 MLPs: a kernel and a bias per Dense layer each.
  assert len(generator.trainable_variables) == 3 * 4
  # tanh output, as the ensemble generator.
  assert np.all(np.abs(generator(tf.random.normal([64, 2])).numpy()) <= 1.0)


def test_table_has_every_configuration(bench, rows):
  configs = [(r["k"], r["generator"], r["xla"], r["update_order"]) for r in rows]
  expected = [(k, g, x, "g_first") for k in (1, 2) for x in (True, False)
              for g in ("ensemble", "list")] + [(2, "ensemble", True, "simultaneous")]
  assert sorted(configs) == sorted(expected)
  for row in rows:
    assert len(row["round_steps_per_s"]) == 2
    for key in ("steps_per_s", "worst_steps_per_s", "ms_per_step", "cpu_ms_per_step",
                "compile_warmup_s"):
      assert math.isfinite(row[key]) and row[key] > 0, (key, row)
    assert row["worst_steps_per_s"] <= row["steps_per_s"]
    assert row["ratio_vs_list"] is not None and row["ratio_vs_list"] > 0
    if row["generator"] == "list":
      assert row["ratio_vs_list"] == pytest.approx(1.0)

  lines = bench.format_table(rows).splitlines()
  assert len(lines) == 2 + len(rows)  # header, rule, one line per row
  for name in bench.COLUMNS:
    assert name in lines[0]
  assert len({len(line) for line in lines[:2]}) == 1  # header aligned with the rule


def test_projection_needs_the_default_configuration(bench, rows):
  assert bench.projected_seconds(rows) is None  # K=8 was not measured
  row = bench.find_row(rows, 2)
  assert bench.projected_seconds(rows, k=2, num_steps=1000) == pytest.approx(
      1000 / row["steps_per_s"])


def test_rejects_steps_that_do_not_split_into_executions(bench):
  with pytest.raises(ValueError):
    bench.run_benchmark(ks=(1,), steps=30, warmup=10, steps_per_execution=10, rounds=2)
