"""Settings of the latent samplers and the smallest step budget they accept.

The defaults of the settings that are also `--sampling.*` flags are those of
`config.sections.SamplingConfig`, read from its fields; the others are set
here. Kernels whose arguments mirror a setting take their defaults from
`DEFAULTS`.
"""

import dataclasses
import math
from typing import Optional, Tuple

from tf_stackelberg.config.sections import SamplingConfig
from tf_stackelberg.sampling.energy import check_temperature
from tf_stackelberg.sampling.registry import SAMPLERS

__all__ = [
    'DEFAULTS',
    'SamplerSettings',
    'min_num_steps',
]


def _flag_default(field_name):
  """The default of the setting `--sampling.<field_name>`."""
  return SamplingConfig.__dataclass_fields__[field_name].default


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
  """What a latent sampler may be tuned with; each sampler reads its part.

  Attributes:
    step_size: Langevin step `s` (`'rep'`, `'ddls'`; the initial step of
      `'wl'` and of its warm-up).
    joint: move the generator index too (only matters for `K > 1`): the
      chains then target `pi(k, z) ~ exp(-E(z, k))`; with `False` each chain
      keeps the uniformly drawn `k` it starts with.
    num_bins: Wang-Landau bins `M` (at least 2: with one bin the bias is a
      constant and the chain is plain MALA); also the bins of the reported
      energy histogram of the other samplers.
    t0: SAMC gain constant, gain `t0 / max(t0, t)`.
    energy_range: `(E_lo, E_hi)` of the Wang-Landau bins, or `None` to set
      it, and the desired bin probabilities, from a MALA warm-up inside the
      step budget (see `samplers/wl.py`).
    resample: for `'wl'`, return `num_samples` importance-resampled draws
      (targeting `exp(-E)`); with `False` the chains' weighted samples are
      returned with `diagnostics['log_weights']`.
    num_warmup_steps: warm-up length for the automatic range (default
      `max(1, num_steps // 5)`); unused with `energy_range`.
    warmup_visit_fraction: share `f` of the warm-up's energy histogram in
      the desired Wang-Landau bin probabilities, `f * h + (1 - f) / M`
      (0, the default: flat); unused with `energy_range`. A positive `f`
      keeps the chains below the barriers between modes for more of their
      time, and at a few thousand steps the mode masses come out biased
      (docs/design.md, section 14.4).
    collect_fraction: the last this fraction of the Wang-Landau steps feed
      the weighted reservoirs; the bias and the step size are frozen from
      there on. The default 0.25 leaves the chains three quarters of the
      flattened run to spread over the modes before any state is kept.
    range_margin: the automatic energy range's top is raised by this
      fraction of its span (`energy_range_from_warmup`'s `margin`); the
      levels above the barriers are where the flattened chains cross
      between modes.
    target_accept_prob: acceptance the Wang-Landau step size is tuned to.
    shared_bias: one Wang-Landau bias for all chains (else one per chain).
    generator_move_every: in joint mode, make a generator move every this
      many steps (gradient samplers; each costs one evaluation).
    temperature: `T > 0` of the discriminator term of the energy for every
      sampler, `E = -log p0 - d_c / T` (`LatentModel.tempered`; 1 leaves
      the model's energy as it is).
    isir_proposals: fresh prior proposals `N` per step of `'isir'`, which
      picks the next state among them and the current one.
  """
  step_size: float = _flag_default('step_size')
  joint: bool = _flag_default('joint')
  num_bins: int = _flag_default('wl_bins')
  t0: float = _flag_default('wl_t0')
  energy_range: Optional[Tuple[float, float]] = None
  resample: bool = _flag_default('wl_resample')
  num_warmup_steps: Optional[int] = None
  warmup_visit_fraction: float = 0.
  collect_fraction: float = 0.25
  range_margin: float = 0.75
  target_accept_prob: float = 0.574
  shared_bias: bool = True
  generator_move_every: int = 1
  temperature: float = _flag_default('temperature')
  isir_proposals: int = _flag_default('isir_proposals')

  def __post_init__(self):
    if not (self.step_size > 0. and math.isfinite(self.step_size)):
      raise ValueError('`step_size` must be a positive finite number, got '
                       f'{self.step_size}.')
    if int(self.num_bins) < 2:
      raise ValueError(f'`num_bins` must be at least 2, got {self.num_bins}.')
    if not (self.t0 > 0. and math.isfinite(self.t0)):
      raise ValueError(f'`t0` must be a positive finite number, got {self.t0}.')
    energy_range = self.energy_range
    if energy_range is not None and len(energy_range) == 0:
      energy_range = None
    if energy_range is not None:
      energy_range = tuple(float(e) for e in energy_range)
      if (len(energy_range) != 2 or not energy_range[0] < energy_range[1] or
          not all(math.isfinite(e) for e in energy_range)):
        raise ValueError('`energy_range` must be two increasing finite '
                         'numbers, got '
                         f'{self.energy_range}.')
    if self.num_warmup_steps is not None and int(self.num_warmup_steps) < 1:
      raise ValueError('`num_warmup_steps` must be positive, got '
                       f'{self.num_warmup_steps}.')
    if not 0. <= self.warmup_visit_fraction <= 1.:
      raise ValueError('`warmup_visit_fraction` must be in [0, 1].')
    if not (self.range_margin >= 0. and math.isfinite(self.range_margin)):
      raise ValueError('`range_margin` must be a non-negative finite number, '
                       f'got {self.range_margin}.')
    if not 0. < self.collect_fraction <= 1.:
      raise ValueError('`collect_fraction` must be in (0, 1].')
    if not 0. < self.target_accept_prob < 1.:
      raise ValueError('`target_accept_prob` must be in (0, 1).')
    if int(self.generator_move_every) < 1:
      raise ValueError('`generator_move_every` must be positive.')
    check_temperature(self.temperature)
    if int(self.isir_proposals) < 1:
      raise ValueError('`isir_proposals` must be positive, got '
                       f'{self.isir_proposals}.')
    object.__setattr__(self, 'temperature', float(self.temperature))
    object.__setattr__(self, 'isir_proposals', int(self.isir_proposals))
    object.__setattr__(self, 'energy_range', energy_range)
    object.__setattr__(self, 'num_bins', int(self.num_bins))
    object.__setattr__(self, 'generator_move_every',
                       int(self.generator_move_every))
    if self.num_warmup_steps is not None:
      object.__setattr__(self, 'num_warmup_steps', int(self.num_warmup_steps))


DEFAULTS = SamplerSettings()


def min_num_steps(sampler_name, settings=None):
  """The smallest `num_steps` that `sample_latents` accepts for a sampler.

  * `'none'`: 0 (no chain; `num_steps` is ignored).
  * `'mh'`, `'rep'`, `'ddls'`: 1 (the output is the state after the last
    transition).
  * `'wl'` with a fixed `energy_range`: 1 (no warm-up; one Wang-Landau step).
  * `'wl'` with the automatic range: `W + 1`, where `W` is
    `settings.num_warmup_steps` if set, else 1 (the default warm-up
    `max(1, num_steps // 5)` then leaves at least one step for the
    flattened phase whenever `num_steps >= 2`): the range needs at least one
    warm-up step and the estimator at least one Wang-Landau step.

  Each sampler's record says it (`registry.Sampler.min_steps`).

  This is a lower bound for the run to be defined, not a recommendation:
  Wang-Landau needs hundreds of steps to flatten the energy levels.

  Args:
    sampler_name: a name in `registry.SAMPLERS`.
    settings: `SamplerSettings` (defaults if `None`).

  Returns:
    int.

  Raises:
    ConfigError: for an unknown sampler (a `ValueError`).

  #### Examples

  ```python
  min_num_steps('wl', SamplerSettings())                          # 2
  min_num_steps('wl', SamplerSettings(num_warmup_steps=50))       # 51
  min_num_steps('wl', SamplerSettings(energy_range=(100., 200.))) # 1
  min_num_steps('rep', SamplerSettings())                         # 1
  ```
  """
  settings = DEFAULTS if settings is None else settings
  return SAMPLERS.get(sampler_name).min_steps(settings)

