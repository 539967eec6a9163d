"""The library the tools share (tools/toolkit/): the timing protocol's order and
statistics, flagfiles read with the command line's flags, free ports and the child
launcher. No TensorFlow is imported here."""

import os
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "tools"))  # where a tool finds the library

from toolkit import children  # pylint: disable=g-import-not-at-top,wrong-import-position
from toolkit import flagfiles  # pylint: disable=g-import-not-at-top,wrong-import-position
from toolkit import ports  # pylint: disable=g-import-not-at-top,wrong-import-position
from toolkit import timing  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_round_robin_reverses_the_groups_every_other_round_and_keeps_parts_together():
  calls = []

  def call(group, part):
    return lambda r: calls.append((r, group, part))
  groups = {g: {p: call(g, p) for p in ("a", "b")} for g in ("x", "y", "z")}
  series = timing.round_robin(groups, rounds=3, warmup=1)
  warm, timed = calls[:6], calls[6:]
  assert warm == [(-1, g, p) for g in "xyz" for p in "ab"]
  assert [(r, g) for r, g, p in timed if p == "a"] == [
      (0, "x"), (0, "y"), (0, "z"), (1, "z"), (1, "y"), (1, "x"),
      (2, "x"), (2, "y"), (2, "z")]
  for first, second in zip(timed[::2], timed[1::2]):  # a group's parts in order
    assert first[:2] == second[:2] and (first[2], second[2]) == ("a", "b")
  assert all(len(series[g][p]) == 3 for g in "xyz" for p in "ab")


def test_round_robin_skips_a_group_when_asked():
  seen = []
  series = timing.round_robin(
      {"slow": {"": seen.append}, "fast": {"": seen.append}}, rounds=3,
      skip=lambda group, r, _: group == "slow" and r > 0)
  assert len(series["slow"][""]) == 1 and len(series["fast"][""]) == 3
  assert seen == [0, 0, 1, 2]


def test_series_statistics():
  series = timing.Series.of_laps([(9.0, 8.0), (3.0, 2.5), (1.0, 4.0), (2.0, 1.0)])
  assert series.warmup_wall == 9.0 and series.warmup_cpu == 8.0
  assert series.wall == [3.0, 1.0, 2.0] and series.cpu == [2.5, 4.0, 1.0]
  assert (series.best_wall, series.worst_wall, series.median_wall) == (1.0, 3.0, 2.0)
  assert series.best_index == 1 and series.best_cpu == 1.0
  assert series.cpu[series.best_index] == 4.0  # the fastest round's own CPU seconds


def test_repeat_warms_up_then_times_each_call():
  calls = []
  series = timing.repeat(lambda: calls.append(1), repetitions=4, warmup=2)
  assert len(calls) == 6 and len(series) == 4
  assert all(w >= 0 for w in series.wall) and series.warmup_wall >= 0


def test_flagfile_read_with_the_command_lines_flags_follows_nested_flagfiles(
    tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # nested flagfiles are found from anywhere
  # configs/cifar10_quick.cfg reads configs/cifar10.cfg, then turns XLA off.
  config = flagfiles.read_flagfile("configs/cifar10_quick.cfg")
  assert config.data.dataset == "cifar10"
  assert config.runtime.jit_compile is False
  config = flagfiles.read_flagfile(os.path.join(REPO, "configs", "mog_ring.cfg"),
                                   {"runtime.precision": "mixed_bfloat16"})
  assert config.data.dataset == "ring" and config.runtime.jit_compile is True
  assert config.runtime.precision == "mixed_bfloat16"


def test_free_ports_differ():
  chosen = ports.free_ports(3)
  assert len(set(chosen)) == 3 and all(0 < p < 65536 for p in chosen)


def test_a_failed_child_reports_its_error_line(tmp_path):
  script = tmp_path / "child.py"
  script.write_text("import sys\nprint('working')\nraise ValueError('no such cell')\n")
  result = children.launch(str(script), {"cell": 1}, str(tmp_path), "cell", timeout=60)
  assert result["error"].startswith("exit 1: ValueError: no such cell")
  assert "working" in result["log"]


def test_a_child_that_runs_too_long_is_stopped(tmp_path):
  script = tmp_path / "child.py"
  script.write_text("import time\ntime.sleep(60)\n")
  result = children.launch(str(script), {}, str(tmp_path), "slow", timeout=0.5)
  assert result["error"] == "timed out after 0 s"


@pytest.mark.parametrize("workers", [0, 2])
def test_a_child_writes_its_result_where_the_launcher_reads_it(tmp_path, workers):
  script = tmp_path / "child.py"
  script.write_text(
      "import json, os, sys\n"
      "spec = json.loads(sys.argv[2])\n"
      "task = json.loads(os.environ.get('TF_CONFIG', '{}')).get('task', {})\n"
      "with open(spec['out'], 'w') as f:\n"
      "  json.dump({'rate': spec['value'] + task.get('index', 0)}, f)\n")
  result = children.launch(str(script), {"value": 5}, str(tmp_path), "ok", 60,
                           workers=workers)
  assert result["rate"] == 5
  if workers:
    assert result["other_worker_rates"] == [6]
