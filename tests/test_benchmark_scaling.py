"""tools/benchmark_scaling.py: its --quick mode on the smallest row and two columns
(each cell a fresh process), the accounting of a traced step, and the projection
arithmetic on known inputs (no timing assertions)."""

import json
import math
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, load_tool


@pytest.fixture(scope="module")
def tool():
  return load_tool("benchmark_scaling")


@pytest.fixture(scope="module")
def report(tool, tmp_path_factory):
  path = tmp_path_factory.mktemp("scaling") / "report.json"
  tool.main(["--quick", "--families=mog", "--columns=replicas1,replicas2",
             "--no_counts", f"--json={path}"])
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def test_quick_run_has_one_figure_per_cell(report):
  assert report["families"] == ["mog"]
  assert report["columns"] == ["replicas1", "replicas2"]
  row = report["cells"]["mog"]
  for column, replicas in (("replicas1", 1), ("replicas2", 2)):
    cell = row[column]
    assert "error" not in cell, cell
    assert cell["unit"] == "steps/s"
    assert cell["replicas"] == replicas and cell["strategy"] == "MirroredStrategy"
    # One step per call, as `Run` sets with several replicas, in both columns; the
    # ring config compiles: the whole step on one replica, each replica's forward
    # and backward pass on two.
    assert cell["steps_per_execution"] == 1
    assert (cell["jit_compile"], cell["replica_jit_compile"]) == (
        (True, False) if replicas == 1 else (False, True))
    assert cell["per_replica_batch"] == 64 // replicas
    assert len(cell["rates"]) == 2  # the quick setting's timed rounds
    for value in cell["rates"] + [cell["rate"], cell["warmup_seconds"]]:
      assert math.isfinite(value) and value > 0, (column, cell)
    assert cell["rate"] == max(cell["rates"])
  ratio = report["ratios"]["mog"]["replicas2/replicas1"]
  assert ratio == pytest.approx(row["replicas2"]["rate"] / row["replicas1"]["rate"])


def test_table_shows_the_figures_and_their_ratios(report):
  text = report["table"]
  assert text.startswith("CPU: ") and "AVX-512: " in text and "AVX512_BF16: " in text
  lines = [l for l in text.splitlines() if l.startswith("|")]
  assert lines[0].split("|")[1:-1] == [" family ", " unit ", " GFLOP/step ",
                                       " replicas 1 ", " replicas 2 "]
  assert len(lines) == 3  # header, rule, the mog row
  cells = [c.strip() for c in lines[2].split("|")[1:-1]]
  assert cells[:3] == ["MoG ring (mog_ring.cfg)", "steps/s", "-"]
  row = report["cells"]["mog"]
  for text_cell, column in zip(cells[3:], ("replicas1", "replicas2")):
    figure, ratio = re.fullmatch(r"([\d,.]+) \(([\d.]+)\)", text_cell).groups()
    shown = float(figure.replace(",", ""))
    assert shown == pytest.approx(row[column]["rate"], rel=0.01)
    expected = row[column]["rate"] / row["replicas1"]["rate"]
    assert float(ratio) == pytest.approx(expected, abs=0.006)


def test_table_marks_failed_and_inapplicable_cells(tool):
  report = {"families": ["sampling"], "columns": ["replicas1", "workers2", "xla_on"],
            "settings": {"sampler": "rep", "model_dir": None,
                         "families": {"sampling": {"chains": 10}}},
            "cells": {"sampling": {"replicas1": {"error": "exit 1: boom"},
                                   "workers2": {"not_applicable": "why"},
                                   "xla_on": {"rate": 5.0, "unit": "chain-steps/s"}}}}
  row = tool.format_table(report).splitlines()[2]
  assert row.endswith("| chain-steps/s | - | failed | n/a | 5.00 (1.00) |")
  assert tool.failures(report) == [("sampling", "replicas1", "exit 1: boom")]


def test_same_settings_are_measured_once(tool):
  plan = tool.plan_cells(["mog", "cifar"], ["xla_on", "xla_off", "float32"],
                         {"mog": {"jit_compile": True, "precision": "float32"},
                          "cifar": {"jit_compile": False, "precision": "float32"}})
  keys = {(family, column): key for family, column, key in plan}
  assert keys["mog", "float32"] == keys["mog", "xla_on"]  # mog compiles by default
  assert keys["cifar", "float32"] == keys["cifar", "xla_off"]
  assert keys["mog", "xla_on"] != keys["cifar", "xla_on"]


def test_step_accounting_of_the_ring_game(tmp_path):
  """The counting process on configs/mog_ring.cfg (a fresh process: the profile tool
  it uses defines absl flags, which another copy in this process would define again)."""
  out = tmp_path / "counts.json"
  spec = {"counts": True, "families": ["mog"], "matmul_size": 128, "matmul_repeats": 1,
          "out": str(out)}
  subprocess.run([sys.executable, os.path.join(REPO, "tools", "benchmark_scaling.py"),
                  "--child", json.dumps(spec)], cwd=REPO, check=True, timeout=300,
                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True)
  with open(out, encoding="utf-8") as f:
    counts = json.load(f)
  model = counts["models"]["mog"]
  assert model["batch_size"] == 64
  # Eight generators 2-32-2; discriminator 2-512-256-1 with an 8-way classifier head.
  assert model["params_generator"] == 8 * (2 * 32 + 32 + 32 * 2 + 2)
  assert model["params_discriminator"] == (2 * 512 + 512 + 512 * 256 + 256
                                           + 256 + 1 + 256 * 8 + 8)
  assert model["gflop_per_step"] > 0 and model["ops_per_step"] > 100
  assert 0 < model["optimizer_ops_per_step"] < model["ops_per_step"]
  saved = model["saved_activation_elements"]
  assert set(saved) == {"generator update", "discriminator update"}
  # Each update keeps at least the discriminator's hidden layers of its rows: 8 x 64
  # fakes for the generators', 64 real + 8 x 64 fakes for the discriminator's.
  assert saved["generator update"] >= 512 * (512 + 256)
  assert saved["discriminator update"] >= 576 * (512 + 256)
  for rates in counts["matmul_gflops"].values():
    assert rates["wall"] > 0 and rates["cpu"] > 0


MODEL = dict(gflop_per_step=800.0, batch_size=64, params_generator=3_000_000,
             params_discriminator=1_000_000, params_non_trainable=1_000,
             saved_activation_elements={"generator update": 10_000_000,
                                        "discriminator update": 20_000_000},
             ops_per_step=1_000, optimizer_ops_per_step=300)
DEVICE = dict(name="dev", replicas=4,
              precisions=(("float32", 100.0, "float32", 4),
                          ("mixed_bfloat16", 200.0, "mixed_bfloat16", 2)),
              hbm_gbps=1000.0, memory_gib=16.0, link_gbps=100.0,
              per_op_overhead_us=2.0, source="", notes="")


def test_projection_arithmetic(tool):
  f32, bf16 = tool.projection(MODEL, {"float32": 0.5, "mixed_bfloat16": 0.25},
                              (DEVICE,))
  assert f32["per_replica_batch"] == 16 and f32["gflop_per_replica"] == 200
  assert f32["param_bytes"] == 4 * 4_001_000
  assert f32["allreduce_bytes"] == 16e6 and f32["allreduce_bytes_bf16"] == 8e6
  # 200 GFLOP at half of 100 TFLOP/s.
  assert f32["compute_s"] == pytest.approx(4e-3)
  # Ring: 2 * 3/4 * 16 MB over 100 GB/s.
  assert f32["allreduce_s"] == pytest.approx(2.4e-4)
  # The larger update's activations, a quarter of the batch, 4 bytes each.
  assert f32["activation_bytes"] == pytest.approx(20e6)
  assert f32["memory_bytes"] == pytest.approx(4 * 4_001_000 + 32e6 + 16e6 + 20e6)
  assert f32["memory_fraction"] == pytest.approx(f32["memory_bytes"] / 16 / 2**30)
  # 3 passes over 20 MB + 36 bytes x 4M parameters, at 1 TB/s.
  assert f32["memory_s"] == pytest.approx((60e6 + 144e6) / 1e12)
  assert f32["host_s"] == pytest.approx(2e-3)
  assert f32["step_s"] == pytest.approx(4e-3 + 2.4e-4 + 2e-3)
  # Each replica's gradients compiled: only the 300 optimizer ops are dispatched.
  assert f32["xla_host_s"] == pytest.approx(6e-4)
  assert f32["xla_step_s"] == pytest.approx(4e-3 + 2.4e-4 + 6e-4)
  # bfloat16: twice the peak at half the fraction; 2-byte activations.
  assert bf16["compute_s"] == pytest.approx(4e-3)
  assert bf16["activation_bytes"] == pytest.approx(10e6)
  assert bf16["memory_s"] == pytest.approx((30e6 + 144e6) / 1e12)


def test_projection_without_a_measured_fraction(tool):
  rows = tool.projection(MODEL, {}, (DEVICE,))
  assert all(r["step_s"] is None and r["compute_s"] is None for r in rows)
  assert rows[0]["memory_bytes"] > 0 and rows[0]["allreduce_s"] > 0
  # One precision measured: the other borrows its fraction.
  bf16 = tool.projection(MODEL, {"float32": 0.5}, (DEVICE,))[1]
  assert bf16["compute_s"] == pytest.approx(200e9 / (200e12 * 0.5))


def test_efficiency_uses_cpu_seconds_of_the_largest_row(tool):
  report = {"cells": {"mog": {"float32": {"rate": 50.0, "cpu_ms_per_step": [20.0]}},
                      "cifar": {"float32": {"rate": 2.0,
                                            "cpu_ms_per_step": [1000.0, 800.0]}}},
            "counts": {"models": {"mog": {"gflop_per_step": 1.0},
                                  "cifar": {"gflop_per_step": 69.4}},
                       "matmul_gflops": {"float32": {"wall": 90.0, "cpu": 100.0},
                                         "mixed_bfloat16": {"wall": 1, "cpu": 1}}}}
  value = tool.efficiency(report)
  assert set(value) == {"float32"}  # no bfloat16 column was measured
  assert value["float32"]["family"] == "cifar"
  assert value["float32"]["fraction"] == pytest.approx(69.4 / 0.8 / 100.0)
  assert value["float32"]["wall_gflops"] == pytest.approx(138.8)
