"""What a sampler run costs in evaluations of `G` and `D`, and the steps a budget buys.

`sample_latents` reports the cost of a run after the fact
(`diagnostics['num_energy_evaluations']`, `diagnostics['num_gradient_evaluations']`).
The functions here give the same counts per chain before any work, from the sampler,
its settings, the number of steps and the number of generators, so that samplers can be
compared at an equal number of evaluations rather than of steps:

| sampler | evaluations per chain | with a gradient |
|---|---|---|
| `'none'` | 1 (the energies of the generator's own samples) | 0 |
| `'mh'` | `1 + T` (a joint proposal draws `k` with `z`: no extra cost) | 0 |
| `'isir'` | `1 + N T` (`N` proposals per step, `k` drawn with `z`) | 0 |
| `'rep'`, `'ddls'` | `1 + T + m(T)` | all |
| `'wl'`, automatic range | `2 + T + m(T_w) + m(T - T_w)` (two bootstraps) | all |
| `'wl'`, fixed range | `1 + T + m(T)` | all |

`T` is `num_steps`, `N` `settings.isir_proposals`, `T_w` the Wang-Landau warm-up (`samplers/wl.py`, `plan_phases`) and
`m(n)` the generator moves of a phase of `n` steps: `ceil(n / generator_move_every)` in
joint mode with more than one generator, else 0. With joint moves every step (the
default) a Langevin step thus costs two evaluations and an MH-GAN step one; the
gradient evaluations also back-propagate through `G` and `D`.
"""

from tf_stackelberg.sampling.registry import SAMPLERS
from tf_stackelberg.sampling.settings import DEFAULTS
from tf_stackelberg.sampling.settings import min_num_steps

__all__ = [
    'evaluations_per_chain',
    'steps_for_budget',
]

def _generator_moves(num_steps, settings):
  """Generator moves of a joint phase of `num_steps` steps."""
  return -(-num_steps // settings.generator_move_every)


def evaluations_per_chain(sampler, num_steps, settings=None, num_generators=1):
  """`(evaluations, gradient_evaluations)` of `G` and `D` per chain of a run.

  The counts `sample_latents` reports, divided by the number of chains (module
  docstring); the final pass of `G` over the returned latents is not counted.
  They follow from the sampler's record (`registry.Sampler`): one bootstrap
  and `evaluations_per_step` per step for each of its `phases`, plus the generator
  moves of a joint chain unless its proposal moves `k` itself
  (`proposes_generator`); a sampler without phases evaluates its samples
  once. All of them back-propagate for a `gradient` sampler, none otherwise.

  Args:
    sampler: a name in `registry.SAMPLERS`.
    num_steps: transitions per chain (int, at least `min_num_steps`; ignored by
      a sampler without chains).
    settings: `SamplerSettings` (defaults if `None`).
    num_generators: `K`; generator moves are made when `K > 1` and
      `settings.joint`.

  Returns:
    `(int, int)`.

  Raises:
    ConfigError: an unknown sampler (a `ValueError`).
    ValueError: too few steps for the sampler.
  """
  record = SAMPLERS.get(sampler)
  settings = DEFAULTS if settings is None else settings
  needed = record.min_steps(settings)
  if not needed:  # no chains: `num_steps` is ignored
    return 1, 0
  num_steps = int(num_steps)
  if num_steps < needed:
    raise ValueError(f'`num_steps` must be at least {needed} for sampler '
                     f'{sampler!r}, got {num_steps}.')
  moves = (bool(settings.joint) and int(num_generators) > 1 and
           not record.proposes_generator)
  per_step = int(record.evaluations_per_step(settings))
  total = sum(1 + per_step * n + (_generator_moves(n, settings) if moves else 0)
              for n in record.phases(num_steps, settings))
  return total, (total if record.gradient else 0)


def steps_for_budget(sampler, budget, settings=None, num_generators=1):
  """The most steps whose run costs at most `budget` evaluations per chain.

  `evaluations_per_chain(sampler, steps, ...)[0] <= budget <
  evaluations_per_chain(sampler, steps + 1, ...)[0]`; 0 for `'none'` (one
  evaluation per sample, whatever the budget). Gradient and forward-only
  evaluations count alike.

  Args:
    sampler: a name in `registry.SAMPLERS`.
    budget: evaluations of `G` and `D` per chain (int).
    settings: `SamplerSettings` (defaults if `None`).
    num_generators: `K`.

  Returns:
    int.

  Raises:
    ValueError: a budget below what the sampler's smallest run costs.

  #### Examples

  ```python
  steps_for_budget('mh', 200, num_generators=10)    # 199
  steps_for_budget('rep', 200, num_generators=10)   # 99 (199 evaluations)
  steps_for_budget('wl', 200, num_generators=10)    # 99 (200 evaluations)
  steps_for_budget('rep', 200)                      # 199 (one generator)
  steps_for_budget('isir', 200)                     # 24 (8 proposals a step)
  ```
  """
  settings = DEFAULTS if settings is None else settings
  budget = int(budget)
  low = min_num_steps(sampler, settings)
  cost = evaluations_per_chain(sampler, low, settings, num_generators)[0]
  if cost > budget:
    raise ValueError(f'a budget of {budget} evaluations per chain is below the '
                     f'{cost} of the shortest {sampler!r} run ({low} steps)')
  if not low:  # no chains
    return 0
  # The cost grows by at least one per step, so `budget` steps are an upper bound;
  # it never decreases with the steps, so bisection finds the largest that fits.
  high = budget
  while low < high:
    middle = (low + high + 1) // 2
    if evaluations_per_chain(sampler, middle, settings, num_generators)[0] <= budget:
      low = middle
    else:
      high = middle - 1
  return low
