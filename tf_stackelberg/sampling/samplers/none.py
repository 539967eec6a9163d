"""`'none'`: no chain; the generator itself (`z ~ p0`, `k` uniform)."""

import tensorflow as tf

from tf_stackelberg.sampling.chains import Draws
from tf_stackelberg.sampling.registry import register
from tf_stackelberg.sampling.registry import Sampler


def no_steps(settings):
  """`Sampler.min_steps`: no chain, so `num_steps` is ignored."""
  del settings  # the same for all settings
  return 0


def no_phases(num_steps, settings):
  """`Sampler.phases`: no chain."""
  del num_steps, settings  # the same for all
  return ()


def prior(chains):
  """Returns the chains' initial states: samples of the generator alone.

  Costs one evaluation of the energy per sample (for the reported energies;
  under a strategy each replica evaluates its share); `num_steps` is
  ignored.
  """
  z, k = chains.split(chains.initial_state)
  energy = chains.engine.map_rows(chains.energy_fn, z, k)
  return Draws(z, k, energy, phases=(), bins=None,
               step_size=tf.zeros([], chains.model.dtype), extra={})


register(Sampler('none', prior, min_steps=no_steps, phases=no_phases,
                 gradient=False))
