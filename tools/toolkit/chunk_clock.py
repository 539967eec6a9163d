"""The compiled chunks of a `sample_latents` call, timed from its progress callback.

`sample_latents` runs the chains in chunks of `chunk_steps` steps; the first chunk of
each length in a phase compiles a function, the later ones reuse it. The clock splits
the chunks into those two kinds, so that a rate leaves compilation out and the
compilation time can be estimated.
"""

import time

from tf_stackelberg.sampling.registry import SAMPLERS


class ChunkClock:
  """Times the compiled chunks of a `sample_latents` call (its progress callback).

  Args:
    phase_starts: the step indices at which the sampler's phases start (`[0]`, or
      `[0, W]` for Wang-Landau with a warm-up of `W` steps).
  """

  def __init__(self, phase_starts):
    self.phase_starts = list(phase_starts)
    self.marks = []
    self.start = None

  def begin(self):
    self.start = time.perf_counter()

  def __call__(self, done, total):  # pylint: disable=unused-argument
    self.marks.append((int(done), time.perf_counter()))

  def split_chunks(self):
    """(first, steady): the chunks as (phase, steps, seconds), split into those that
    compiled a function and those that reused one."""
    chunks, previous_steps, previous_time = [], 0, self.start
    for done, stamp in self.marks:
      phase = sum(done > s for s in self.phase_starts) - 1
      chunks.append((phase, done - previous_steps, stamp - previous_time))
      previous_steps, previous_time = done, stamp
    seen, first, steady = set(), [], []
    for phase, steps, seconds in chunks:
      # A chunk of a new length in a phase is a new compiled function (and the first
      # chunk of a phase follows its bootstrap, compiled too).
      (steady if (phase, steps) in seen else first).append((phase, steps, seconds))
      seen.add((phase, steps))
    return first, steady

  def compile_seconds(self):
    """Seconds spent compiling (estimated), or None without a chunk to compare."""
    first, steady = self.split_chunks()
    if not steady:
      return None

    def rate(rows):
      return sum(r[2] for r in rows) / sum(r[1] for r in rows)

    overall = rate(steady)
    per_phase = {}
    for phase in {r[0] for r in steady}:
      per_phase[phase] = rate([r for r in steady if r[0] == phase])
    return sum(max(0., seconds - per_phase.get(phase, overall) * steps)
               for phase, steps, seconds in first)


def phase_starts(sampler, num_steps, settings):
  """The steps at which `sampler`'s phases start in a run of `num_steps` steps.

  `[0]` for a sampler of one phase or of none (`'none'`); the cumulative sums of
  its `Sampler.phases` otherwise.
  """
  starts = [0]
  for steps in tuple(SAMPLERS.get(sampler).phases(num_steps, settings))[:-1]:
    starts.append(starts[-1] + steps)
  return starts
