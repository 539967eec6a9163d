"""`'none'`: no chain; the generator itself (`z ~ p0`, `k` uniform)."""

import tensorflow as tf

from tf_stackelberg.sampling.driver import Draws
from tf_stackelberg.sampling.registry import SAMPLERS


@SAMPLERS.register('none')
def prior(chains):
  """Returns the chains' initial states: samples of the generator alone.

  Costs one evaluation of the energy per sample (for the reported energies;
  under a strategy each replica evaluates its share); `num_steps` is
  ignored.
  """
  z, k = chains.split(chains.initial_state)
  energy = chains.driver.map_rows(chains.energy_fn, z, k)
  return Draws(z, k, energy, phases=(), bins=None,
               step_size=tf.zeros([], chains.model.dtype), extra={})
