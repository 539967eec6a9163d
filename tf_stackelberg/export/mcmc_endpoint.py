"""The `mcmc_sample(n, steps, seed)` endpoint: latent MCMC in a SavedModel.

The endpoint is `sample_latents` itself, traced into the exported graph:
`mcmc_sample(n, steps, seed)` returns exactly what
`sample_latents(sampler, model, n, steps, seed, settings, jit_compile=False)`
returns for the same arguments (`x`, `k`, `z` and the energies), with the
same sampler code and, for `'wl'`, the same Wang-Landau estimator (warm-up,
energy range and desired bin probabilities from the warm-up, frozen bias,
weighted trajectory reservoirs, importance resampling). `n` (the number of
chains and of samples) and `steps` (transitions per chain) are tensors at
serving time; what is fixed at export time is the model, including the
calibration of its discriminator logit and its latent prior (the chains'
initial states and MH-GAN's proposals are drawn from it), and the sampler
settings (a fixed `energy_range` among them, if one is given). The graph
runs without XLA; compiled runs of `sample_latents` use another random
number algorithm.

Signature: `n` int32 scalar, `steps` int32 scalar, `seed` int64 `[2]` (as
the model's `sample(n, seed)`) -> `{'samples': [n, D], 'generator': int32 [n],
'z': [n, latent_dim], 'energy': [n]}`.

Example:
  fn, signature = mcmc_sample_endpoint(model, SamplerSettings(num_bins=50))
  export_gan(gan, export_dir, {'mcmc_sample': (fn, signature)})
  loaded = tf.saved_model.load(export_dir)
  out = loaded.signatures['mcmc_sample'](
      n=tf.constant(1000), steps=tf.constant(640),
      seed=tf.constant([0, 1], tf.int64))
"""

import tensorflow as tf

from tf_stackelberg.sampling.registry import SAMPLERS
from tf_stackelberg.sampling.sample import sample_latents
from tf_stackelberg.sampling.settings import SamplerSettings

__all__ = [
    'SIGNATURE',
    'mcmc_sample_endpoint',
]

SIGNATURE = (tf.TensorSpec([], tf.int32, name='n'),
             tf.TensorSpec([], tf.int32, name='steps'),
             tf.TensorSpec([2], tf.int64, name='seed'))


def mcmc_sample_endpoint(model, settings=None, sampler='wl'):
  """The endpoint function and its input signature, for `export_gan`.

  Args:
    model: `LatentModel` of the exported GAN (its callables must use the
      tracked Keras models).
    settings: `SamplerSettings` (defaults if `None`).
    sampler: name of the sampler (`SAMPLERS.names()`).

  Returns:
    `(mcmc_sample, SIGNATURE)`; `mcmc_sample(n, steps, seed)` returns the
    dict of the module docstring.
  """
  SAMPLERS.check(sampler)
  settings = SamplerSettings() if settings is None else settings

  def mcmc_sample(n, steps, seed):
    result = sample_latents(sampler, model, n, steps, seed, settings,
                            jit_compile=False)
    return {'samples': result.x, 'generator': result.k, 'z': result.z,
            'energy': result.energy}

  return mcmc_sample, list(SIGNATURE)
