"""The registry of latent samplers and the record each sampler registers.

A sampler is one `Sampler` record registered with `register` in its own
module of `tf_stackelberg.sampling.samplers`. Its `run(chains) -> Draws` draws
the samples (`chains`, an `engine.Chains`, holds the model, the settings, the
initial states and the seeds, and runs kernels on the chains); its other
fields are what the rest of the package needs to know about it without
comparing names: the smallest step budget (`settings.min_num_steps`), the
phases and the kind of evaluations that make its cost
(`budget.evaluations_per_chain`) and its health checks
(`diagnostics.health_problems`). Adding a sampler means adding one module
there:

```python
def hmc(chains):
  \"\"\"HMC on `E` with three leapfrog steps.\"\"\"
  return chains.final_states(
      lambda energy_fn: tfp.mcmc.HamiltonianMonteCarlo(
          lambda z: -energy_fn(z), chains.settings.step_size, 3))

register(Sampler('hmc', hmc, health_checks=(diverged,)))
```

`SAMPLERS.names()` lists the samplers; `SAMPLERS.get(name)` returns the
record and raises `ConfigError` naming the known ones for an unknown name.
"""

import dataclasses
from typing import Callable, Tuple

from tf_stackelberg.common.registry import Registry

__all__ = [
    'SAMPLERS',
    'Sampler',
    'register',
]

SAMPLERS = Registry('sampler', package='tf_stackelberg.sampling.samplers',
                    flag='--sampling.sampler')


def one_step(settings):
  """`Sampler.min_steps` of a sampler whose output is the state after a step."""
  del settings  # the same for all settings
  return 1


def one_evaluation(settings):
  """`Sampler.evaluations_per_step` of a sampler evaluating one point a step."""
  del settings  # the same for all settings
  return 1


def one_phase(num_steps, settings):
  """`Sampler.phases` of a sampler that runs one phase of all the steps."""
  del settings  # the same for all settings
  return (num_steps,)


@dataclasses.dataclass(frozen=True)
class Sampler:
  """What the package knows about one sampler.

  Attributes:
    name: the name it is registered under (`--sampling.sampler`).
    run: callable `(engine.Chains) -> engine.Draws`, the sampler itself.
    min_steps: callable `(SamplerSettings) -> int`, the smallest `num_steps`
      for which a run is defined (see `settings.min_num_steps`).
    phases: callable `(num_steps, SamplerSettings) -> tuple of int`, the
      transitions per chain of each phase that runs a chain (bootstrapped
      once each); empty for a sampler without chains.
    gradient: whether the evaluations of `G` and `D` back-propagate.
    proposes_generator: whether the kernel's own proposal moves the
      generator index in joint mode (else a joint chain makes separate
      generator moves, each one more evaluation).
    health_checks: callables `(diagnostics) -> list of str`, in the order
      their problems are reported (`diagnostics.health_problems`).
    evaluations_per_step: callable `(SamplerSettings) -> int`, latent points
      a transition of a chain evaluates (1; `N` proposals for `'isir'`),
      generator moves aside.
  """
  name: str
  run: Callable
  min_steps: Callable = one_step
  phases: Callable = one_phase
  gradient: bool = True
  proposes_generator: bool = False
  health_checks: Tuple[Callable, ...] = ()
  evaluations_per_step: Callable = one_evaluation


def register(sampler):
  """Registers the `Sampler` record `sampler` under its name; returns it."""
  return SAMPLERS.register(sampler.name)(sampler)
