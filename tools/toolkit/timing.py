"""The one timing protocol of the benchmarks: warm-up calls, then timed rounds.

Every figure a tool reports is read off a `Series`: the wall and process-CPU seconds of
each timed round of one measured thing, after its warm-up calls (tracing, compilation
and first executions happen there and are not counted). `repeat` times one callable
alone; `round_robin` times several, one round of each in turn, the order reversed every
other round, so that load that comes and goes on a shared machine falls on all of them
alike and no one of them always runs right after the same neighbour. CPU seconds are
those of this process (all its threads): other jobs move them much less than wall
seconds.
"""

import dataclasses
import statistics
import time
from typing import List


class Stopwatch:
  """Wall and process-CPU seconds between `start` and `stop` (or of a `with` block):
  `wall` and `cpu` once stopped."""

  def __init__(self):
    self.wall = self.cpu = None
    self._start = None

  def start(self):
    self._start = (time.perf_counter(), time.process_time())
    return self

  def stop(self):
    self.wall = time.perf_counter() - self._start[0]
    self.cpu = time.process_time() - self._start[1]
    return self

  def __enter__(self):
    return self.start()

  def __exit__(self, *exc_info):
    self.stop()


@dataclasses.dataclass
class Series:
  """Seconds of every timed round of one measured thing, in order, and of its
  warm-up."""
  wall: List[float] = dataclasses.field(default_factory=list)
  cpu: List[float] = dataclasses.field(default_factory=list)
  warmup_wall: float = 0.0
  warmup_cpu: float = 0.0

  @classmethod
  def of_laps(cls, laps, warmup=1):
    """The series of `(wall, cpu)` laps whose first `warmup` were the warm-up."""
    laps = list(laps)
    return cls(wall=[w for w, _ in laps[warmup:]], cpu=[c for _, c in laps[warmup:]],
               warmup_wall=sum(w for w, _ in laps[:warmup]),
               warmup_cpu=sum(c for _, c in laps[:warmup]))

  def add(self, watch):
    """Appends the round a stopped `Stopwatch` timed."""
    self.wall.append(watch.wall)
    self.cpu.append(watch.cpu)

  def __len__(self):
    return len(self.wall)

  @property
  def best_index(self):
    """The fastest round (the first of equals)."""
    return self.wall.index(min(self.wall))

  @property
  def best_wall(self):
    return min(self.wall)

  @property
  def worst_wall(self):
    return max(self.wall)

  @property
  def median_wall(self):
    return statistics.median(self.wall)

  @property
  def best_cpu(self):
    """The fewest CPU seconds of any round (not necessarily the fastest round's)."""
    return min(self.cpu)


def repeat(fn, repetitions, warmup=1):
  """Calls `fn()` `warmup` times, then times `repetitions` more calls; a `Series`."""
  series = Series()
  with Stopwatch() as watch:
    for _ in range(warmup):
      fn()
  series.warmup_wall, series.warmup_cpu = watch.wall, watch.cpu
  for _ in range(repetitions):
    with Stopwatch() as watch:
      fn()
    series.add(watch)
  return series


def round_robin(groups, rounds, warmup=0, skip=None, on_lap=None):
  """Times several things round-robin; returns `{group: {part: Series}}`.

  Args:
    groups: `{group: {part: fn}}`, in order; `fn(round_index)` is one timed call
      (`round_index` lets a call read later data in later rounds). The parts of a
      group run one after the other, in their order, in every round; the groups run
      in their order in even rounds and in reverse in odd ones.
    rounds: timed rounds.
    warmup: untimed calls of every part (round index -1) before the rounds.
    skip: optional `skip(group, round_index, series_of_group)`: True leaves the
      group out of that round.
    on_lap: optional `on_lap(group, part, round_index, series_of_group)` after every
      timed call (for progress lines).
  """
  series = {g: {p: Series() for p in parts} for g, parts in groups.items()}
  for group, parts in groups.items():
    for part, fn in parts.items():
      with Stopwatch() as watch:
        for _ in range(warmup):
          fn(-1)
      series[group][part].warmup_wall = watch.wall
      series[group][part].warmup_cpu = watch.cpu
  order = list(groups)
  for r in range(rounds):
    for group in (order if r % 2 == 0 else order[::-1]):
      if skip is not None and skip(group, r, series[group]):
        continue
      for part, fn in groups[group].items():
        with Stopwatch() as watch:
          fn(r)
        series[group][part].add(watch)
        if on_lap is not None:
          on_lap(group, part, r, series[group])
  return series
