"""The registry of latent samplers.

A sampler is one function `sampler(chains) -> Draws` registered under its
name in its own module of `tf_stackelberg.sampling.samplers`; `chains`
(`driver.Chains`) holds the model, the settings, the initial states and the
seeds, and runs kernels on the chains. Adding a sampler means adding one
module there:

```python
@SAMPLERS.register('hmc')
def hmc(chains):
  \"\"\"HMC on `E` with three leapfrog steps.\"\"\"
  return chains.final_states(
      lambda energy_fn: tfp.mcmc.HamiltonianMonteCarlo(
          lambda z: -energy_fn(z), chains.settings.step_size, 3))
```

`SAMPLERS.names()` lists the samplers; `SAMPLERS.get(name)` raises
`ConfigError` naming the known ones for an unknown name.
"""

from tf_stackelberg.common.registry import Registry

__all__ = ['SAMPLERS']

SAMPLERS = Registry('sampler', package='tf_stackelberg.sampling.samplers',
                    flag='--sampling.sampler')
