"""Compatibility with the argument list of the earlier `sample_latents`.

The earlier signature was
`sample_latents(sampler, generate_fn, logit_fn, latent_dim, num_generators,
num_samples, num_steps, seed, **options)`, the options being the fields of
`SamplerSettings` plus `calibration`, `dtype`, `chunk_steps`,
`progress_callback` and `jit_compile`. `accepts_legacy_arguments` lets
`sample_latents` take such calls, recognised by a callable second argument,
and translates them into `sample_latents(sampler, LatentModel(...),
num_samples, num_steps, seed, SamplerSettings(...), ...)`. Two earlier options
are gone: `num_adaptation_steps` (the step size adapts until the collection
of weighted states starts) and `freeze_bias=False` (the weights are exact only
for a frozen bias); they are accepted only with their former defaults.
"""

import functools

import tensorflow as tf

from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.settings import SamplerSettings

__all__ = ['accepts_legacy_arguments']


def _translate(sampler, generate_fn, logit_fn, latent_dim, num_generators,
               num_samples, num_steps, seed, *, calibration=None,
               dtype=tf.float32, chunk_steps=None, progress_callback=None,
               jit_compile=True, num_adaptation_steps=None, freeze_bias=True,
               **settings):
  if num_adaptation_steps is not None or not freeze_bias:
    raise ValueError('`num_adaptation_steps` and `freeze_bias=False` are no '
                     'longer supported: the Wang-Landau bias and step size '
                     'adapt until the collection of weighted states starts.')
  model = LatentModel(generate_fn, logit_fn, latent_dim, num_generators,
                      calibration, dtype)
  return ((sampler, model, num_samples, num_steps, seed,
           SamplerSettings(**settings)),
          dict(chunk_steps=chunk_steps, progress_callback=progress_callback,
               jit_compile=jit_compile))


def accepts_legacy_arguments(sample_fn):
  """Decorates `sample_latents` to also take the earlier argument list."""
  @functools.wraps(sample_fn)
  def sample(sampler, *args, **kwargs):
    first = args[0] if args else kwargs.get('model', kwargs.get('generate_fn'))
    if callable(first) and not isinstance(first, LatentModel):
      args, kwargs = _translate(sampler, *args, **kwargs)
      return sample_fn(*args, **kwargs)
    return sample_fn(sampler, *args, **kwargs)
  return sample
