"""The exported `mcmc_sample` endpoint runs `sample_latents` itself.

A tiny two-generator GAN of Keras layers is exported with
`keras.export.ExportArchive`; the endpoint of the loaded SavedModel must give
the very samples of `sample_latents` (without XLA on both sides) for the same
seed, sizes and settings. Bit for bit, that holds with Grappler's graph
rewrites turned off: some of them depend on statically known shapes, which
the endpoint (number of chains and steps given at run time) does not have,
and change float32 results in their last bits. With the rewrites on, the
generator indices are still equal and the values agree to float32 rounding.
"""

import contextlib
import functools
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.export import mcmc_endpoint
from tf_stackelberg.sampling import LatentModel
from tf_stackelberg.sampling import sample_latents
from tf_stackelberg.sampling import SamplerSettings

SETTINGS = SamplerSettings(step_size=0.05, num_bins=12, t0=20.)


def _mlp(widths, input_dim, seed):
  keras.utils.set_random_seed(seed)
  inputs = keras.Input([input_dim])
  x = inputs
  for width in widths[:-1]:
    x = keras.layers.Dense(width, activation='tanh')(x)
  return keras.Model(inputs, keras.layers.Dense(widths[-1])(x))


@functools.lru_cache(maxsize=None)
def tiny_gan():
  """Two generators `z (2) -> x (2)` and a discriminator `x -> [B, 1]`."""
  generators = [_mlp([16, 2], 2, seed) for seed in (1, 2)]
  discriminator = _mlp([16, 1], 2, 3)

  def generate_fn(z, k):
    outputs = tf.stack([g(z) for g in generators], axis=1)
    return tf.gather(outputs, tf.cast(k, tf.int32), batch_dims=1)

  def logit_fn(x):
    return discriminator(x)

  model = LatentModel(generate_fn, logit_fn, latent_dim=2, num_generators=2,
                      calibration=(0.8, 0.1))
  return model, generators + [discriminator]


_EXPORTS = itertools.count()


def export_and_load(tmp_dir, sampler):
  model, layers = tiny_gan()
  archive = keras.export.ExportArchive()
  for layer in layers:
    archive.track(layer)
  fn, signature = mcmc_endpoint.mcmc_sample_endpoint(model, SETTINGS, sampler)
  archive.add_endpoint('mcmc_sample', fn, input_signature=signature)
  path = f'{tmp_dir}/{sampler}_{next(_EXPORTS)}'
  archive.write_out(path, verbose=False)
  return tf.saved_model.load(path)


@contextlib.contextmanager
def graph_rewrites_off():
  """Turns Grappler off for the functions run inside (restored afterwards)."""
  saved = tf.config.optimizer.get_experimental_options()
  tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True})
  try:
    yield
  finally:
    tf.config.optimizer.set_experimental_options(
        dict(saved, disable_meta_optimizer=saved.get('disable_meta_optimizer',
                                                     False)))


@pytest.fixture(scope='module')
def tmp_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('mcmc_endpoint'))


@pytest.fixture(scope='module')
def loaded_wl(tmp_dir):
  return export_and_load(tmp_dir, 'wl')


def _serve_and_sample(loaded, sampler, n, steps):
  seed = tf.constant([4, 9], tf.int64)
  served = loaded.signatures['mcmc_sample'](
      n=tf.constant(n), steps=tf.constant(steps), seed=seed)
  model, _ = tiny_gan()
  direct = sample_latents(sampler, model, n, steps, seed, SETTINGS,
                          jit_compile=False)
  assert served['samples'].shape == (n, 2) and served['z'].shape == (n, 2)
  # The chains did move the generator index of some chains.
  assert direct.diagnostics['generator_acceptance_rate'] > 0.
  return served, direct


@pytest.mark.parametrize('sampler,n,steps', [('wl', 96, 30), ('mh', 50, 10)])
def test_endpoint_gives_the_samples_of_sample_latents(tmp_dir, sampler, n,
                                                      steps):
  with graph_rewrites_off():
    served, direct = _serve_and_sample(export_and_load(tmp_dir, sampler),
                                       sampler, n, steps)
  np.testing.assert_array_equal(served['generator'], direct.k)
  np.testing.assert_array_equal(served['z'], direct.z)
  np.testing.assert_array_equal(served['samples'], direct.x)
  np.testing.assert_array_equal(served['energy'], direct.energy)


def test_endpoint_with_graph_rewrites_agrees_to_rounding(loaded_wl):
  served, direct = _serve_and_sample(loaded_wl, 'wl', 96, 30)
  np.testing.assert_array_equal(served['generator'], direct.k)
  for name, value in (('z', direct.z), ('samples', direct.x),
                      ('energy', direct.energy)):
    np.testing.assert_allclose(served[name], value, rtol=1e-5, atol=1e-5)


def test_endpoint_signature_and_determinism(loaded_wl):
  mcmc = loaded_wl.signatures['mcmc_sample']
  inputs = mcmc.structured_input_signature[1]
  assert inputs['seed'].dtype == tf.int64 and inputs['seed'].shape == [2]
  assert inputs['n'].dtype == tf.int32 and inputs['steps'].dtype == tf.int32
  first = mcmc(n=tf.constant(32), steps=tf.constant(20),
               seed=tf.constant([5, 6], tf.int64))
  again = mcmc(n=tf.constant(32), steps=tf.constant(20),
               seed=tf.constant([5, 6], tf.int64))
  other = mcmc(n=tf.constant(32), steps=tf.constant(20),
               seed=tf.constant([5, 7], tf.int64))
  np.testing.assert_array_equal(first['z'], again['z'])
  assert np.any(first['z'].numpy() != other['z'].numpy())


