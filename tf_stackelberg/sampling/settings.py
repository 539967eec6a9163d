"""Settings of the latent samplers."""

import dataclasses
from typing import Optional, Tuple

__all__ = ['SamplerSettings']


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
  """What a latent sampler may be tuned with; each sampler reads its part.

  Attributes:
    step_size: Langevin step `s` (`'rep'`, `'ddls'`; the initial step of
      `'wl'` and of its warm-up).
    joint: move the generator index too (only matters for `K > 1`): the
      chains then target `pi(k, z) ~ exp(-E(z, k))`; with `False` each chain
      keeps the uniformly drawn `k` it starts with.
    num_bins: Wang-Landau bins `M`; also the bins of the reported energy
      histogram of the other samplers.
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
      (0: flat); unused with `energy_range`.
    collect_fraction: the last this fraction of the Wang-Landau steps feed
      the weighted reservoirs; the bias and the step size are frozen from
      there on.
    target_accept_prob: acceptance the Wang-Landau step size is tuned to.
    shared_bias: one Wang-Landau bias for all chains (else one per chain).
    generator_move_every: in joint mode, make a generator move every this
      many steps (gradient samplers; each costs one evaluation).
  """
  step_size: float = 0.01
  joint: bool = True
  num_bins: int = 50
  t0: float = 300.0
  energy_range: Optional[Tuple[float, float]] = None
  resample: bool = True
  num_warmup_steps: Optional[int] = None
  warmup_visit_fraction: float = 0.5
  collect_fraction: float = 0.5
  target_accept_prob: float = 0.574
  shared_bias: bool = True
  generator_move_every: int = 1

  def __post_init__(self):
    if not self.step_size > 0.:
      raise ValueError(f'`step_size` must be positive, got {self.step_size}.')
    if int(self.num_bins) < 1:
      raise ValueError(f'`num_bins` must be positive, got {self.num_bins}.')
    if not self.t0 > 0.:
      raise ValueError(f'`t0` must be positive, got {self.t0}.')
    energy_range = self.energy_range
    if energy_range is not None and len(energy_range) == 0:
      energy_range = None
    if energy_range is not None:
      energy_range = tuple(float(e) for e in energy_range)
      if len(energy_range) != 2 or not energy_range[0] < energy_range[1]:
        raise ValueError('`energy_range` must be two increasing numbers, got '
                         f'{self.energy_range}.')
    if self.num_warmup_steps is not None and int(self.num_warmup_steps) < 1:
      raise ValueError('`num_warmup_steps` must be positive, got '
                       f'{self.num_warmup_steps}.')
    if not 0. <= self.warmup_visit_fraction <= 1.:
      raise ValueError('`warmup_visit_fraction` must be in [0, 1].')
    if not 0. < self.collect_fraction <= 1.:
      raise ValueError('`collect_fraction` must be in (0, 1].')
    if not 0. < self.target_accept_prob < 1.:
      raise ValueError('`target_accept_prob` must be in (0, 1).')
    if int(self.generator_move_every) < 1:
      raise ValueError('`generator_move_every` must be positive.')
    object.__setattr__(self, 'energy_range', energy_range)
    object.__setattr__(self, 'num_bins', int(self.num_bins))
    object.__setattr__(self, 'generator_move_every',
                       int(self.generator_move_every))
    if self.num_warmup_steps is not None:
      object.__setattr__(self, 'num_warmup_steps', int(self.num_warmup_steps))
