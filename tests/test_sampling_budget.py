"""`evaluations_per_chain` and `steps_for_budget` against what `sample_latents`
counts and against a counter of the discriminator's inputs."""

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.sampling import evaluations_per_chain
from tf_stackelberg.sampling import sample_latents
from tf_stackelberg.sampling import steps_for_budget
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.settings import SamplerSettings

NUM_CHAINS = 4
SETTINGS = dict(step_size=0.1, num_bins=4, t0=5.)


def counted_model(num_generators, counter):
  offsets = tf.constant(np.arange(2 * num_generators, dtype=np.float32).reshape(
      num_generators, 2) / num_generators)
  mu = tf.constant([1., -0.5])

  def generate_fn(z, k):
    return z + tf.gather(offsets, k)

  def logit_fn(x):
    counter.assign_add(tf.shape(x, out_type=tf.int64)[0])
    return tf.linalg.matvec(x, mu)

  return LatentModel(generate_fn, logit_fn, latent_dim=2,
                     num_generators=num_generators)


CASES = [
    # (sampler, num_steps, num_generators, extra settings)
    ('none', 5, 3, {}),
    ('mh', 7, 3, {}),
    ('rep', 7, 3, {}),
    ('rep', 7, 1, {}),
    ('ddls', 6, 3, {}),
    ('wl', 11, 3, {}),
    ('wl', 11, 3, dict(joint=False)),
    ('wl', 6, 3, dict(energy_range=(-5., 20.))),
    ('wl', 9, 2, dict(num_warmup_steps=4, generator_move_every=2)),
]


@pytest.mark.parametrize('sampler,num_steps,num_generators,extra', CASES)
def test_predicted_cost_is_what_the_run_counts(sampler, num_steps, num_generators,
                                               extra):
  settings = SamplerSettings(**SETTINGS, **extra)
  counter = tf.Variable(0, dtype=tf.int64)
  result = sample_latents(sampler, counted_model(num_generators, counter),
                          NUM_CHAINS, num_steps, [3, 4], settings,
                          jit_compile=False)
  total, gradient = evaluations_per_chain(sampler, num_steps, settings,
                                          num_generators)
  d = result.diagnostics
  assert d['num_energy_evaluations'] == NUM_CHAINS * total
  assert d['num_gradient_evaluations'] == NUM_CHAINS * gradient
  # Every latent point through D, with the final G pass (which skips D) excluded.
  assert int(counter.numpy()) == NUM_CHAINS * total


def test_cost_formulas():
  ten = dict(num_generators=10)
  assert evaluations_per_chain('none', 500, **ten) == (1, 0)
  assert evaluations_per_chain('mh', 199, **ten) == (200, 0)
  assert evaluations_per_chain('rep', 99, **ten) == (199, 199)
  assert evaluations_per_chain('ddls', 99, **ten) == (199, 199)
  # Two bootstraps (warm-up and flattened phase), a generator move every step.
  assert evaluations_per_chain('wl', 99, **ten) == (200, 200)
  assert evaluations_per_chain('rep', 99) == (100, 100)
  assert evaluations_per_chain('wl', 99) == (101, 101)
  assert evaluations_per_chain(
      'wl', 99, SamplerSettings(energy_range=(0., 1.)), 10) == (199, 199)


@pytest.mark.parametrize('sampler', ['mh', 'rep', 'ddls', 'wl'])
@pytest.mark.parametrize('extra', [{}, dict(generator_move_every=3),
                                   dict(joint=False), dict(energy_range=(0., 1.))])
def test_steps_for_budget_is_the_largest_run_within_budget(sampler, extra):
  settings = SamplerSettings(**extra)
  for num_generators in (1, 10):
    smallest = evaluations_per_chain(sampler, 2 if sampler == 'wl' else 1,
                                     settings, num_generators)[0]
    for budget in range(smallest, 120):
      steps = steps_for_budget(sampler, budget, settings, num_generators)
      assert evaluations_per_chain(sampler, steps, settings,
                                   num_generators)[0] <= budget
      assert evaluations_per_chain(sampler, steps + 1, settings,
                                   num_generators)[0] > budget


def test_steps_for_budget_examples_and_errors():
  assert [steps_for_budget(s, 200, num_generators=10)
          for s in ('none', 'mh', 'ddls', 'rep', 'wl')] == [0, 199, 99, 99, 99]
  assert steps_for_budget('rep', 200) == 199
  assert steps_for_budget('none', 1) == 0
  # Two steps (one of warm-up), two bootstraps, two generator moves.
  with pytest.raises(ValueError, match='below the 6 of the shortest'):
    steps_for_budget('wl', 5, num_generators=10)
  with pytest.raises(ValueError, match='below the 1 of the shortest'):
    steps_for_budget('none', 0)
  with pytest.raises(ValueError, match='at least 2'):
    evaluations_per_chain('wl', 1)
  with pytest.raises(ConfigError, match='known: ddls, isir, mh, none, rep, wl'):
    steps_for_budget('hmc', 100)
