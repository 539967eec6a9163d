"""Sampling under a `tf.distribute` strategy: sharded chains, one-device results.

The chains of `sample_latents(..., strategy=...)` are sharded over the
replicas of a `MirroredStrategy` on two logical CPU devices; every sampler
must give the samples, energies and diagnostics of a one-device run of the
same chains and seed, within float rounding, and each replica must evaluate
the model on its own block of chains only. Logical devices have to be set
before TensorFlow initialises its devices, so the comparisons run in a
fresh process: this file, run as a script, prints them as JSON. The same
process then runs `--mode=sample` of a trained run on the two devices (the
command line's `main`, which finds them set up as its
`--runtime.cpu_devices=2` would), saving a second process start.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CHAINS = 16
# name: (sampler, num_chains, num_steps, settings overrides, options). With
# two generators the chains move (k, z) jointly unless `joint` is off.
CASES = {
    'none': ('none', NUM_CHAINS, 0, {}, {}),
    'mh': ('mh', NUM_CHAINS, 8, {}, {}),
    'ddls': ('ddls', NUM_CHAINS, 8, {'generator_move_every': 2}, {}),
    'rep': ('rep', NUM_CHAINS, 8, {}, {'chunk_steps': 3}),
    'wl_shared_bias': ('wl', NUM_CHAINS, 16, {},
                       {'chunk_steps': 5, 'jit_compile': True}),
    'wl_per_chain_bias': ('wl', 15, 16, {'shared_bias': False}, {}),
    'wl_fixed_k_and_range': ('wl', NUM_CHAINS, 12,
                             {'joint': False, 'energy_range': (-2., 6.),
                              'resample': False}, {}),
}
# Largest `|sharded - one device| / (1 + |one device|)` of any value.
TOLERANCE = 1e-5


# ------------------------------------------------------------ the subprocess
def _tiny_gan(strategy, traced_batches):
  """Two generators `z (2) -> x (2)` and a discriminator, built under
  `strategy`; the discriminator records the batch sizes it is traced with."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.sampling import LatentModel  # pylint: disable=import-outside-toplevel

  def mlp(widths, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input([2])
    x = inputs
    for width in widths[:-1]:
      x = keras.layers.Dense(width, activation='tanh')(x)
    return keras.Model(inputs, keras.layers.Dense(widths[-1])(x))

  with strategy.scope():
    generators = [mlp([16, 2], seed) for seed in (1, 2)]
    discriminator = mlp([16, 1], 3)

  def generate_fn(z, k):
    outputs = tf.stack([g(z) for g in generators], axis=1)
    return tf.gather(outputs, tf.cast(k, tf.int32), batch_dims=1)

  def logit_fn(x):
    traced_batches.append(x.shape[0])
    return 3. * discriminator(x)

  return LatentModel(generate_fn, logit_fn, latent_dim=2, num_generators=2,
                     calibration=(0.8, 0.1))


def _largest_difference(one, two):
  """Largest `|two - one| / (1 + |one|)`; equal infinities and NaNs agree."""
  one = np.asarray(one, np.float64)
  two = np.asarray(two, np.float64)
  if one.shape != two.shape:
    return float('inf')
  agree = (one == two) | (np.isnan(one) & np.isnan(two))
  with np.errstate(invalid='ignore'):
    diff = np.where(agree, 0., np.abs(two - one) / (1. + np.abs(one)))
  return float(np.max(np.nan_to_num(diff, nan=np.inf), initial=0.))


def _compare(name, strategy):
  import contextlib  # pylint: disable=import-outside-toplevel
  import io  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.sampling import sample_latents  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.sampling import SamplerSettings  # pylint: disable=import-outside-toplevel
  sampler, num_chains, num_steps, overrides, options = CASES[name]
  settings = SamplerSettings(step_size=0.05, num_bins=12, t0=20., **overrides)
  options = dict(options)
  # A sharded run that asks for XLA falls back to running uncompiled.
  jit_sharded = options.pop('jit_compile', False)
  results, batches, printed = {}, {}, ''
  for key in ('one', 'two'):
    traced = []
    model = _tiny_gan(strategy, traced)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      results[key] = sample_latents(
          sampler, model, num_chains, num_steps, [3, 7], settings,
          jit_compile=jit_sharded and key == 'two',
          strategy=strategy if key == 'two' else None, **options)
    batches[key] = sorted(set(traced))
    printed += out.getvalue()
  one, two = results['one'], results['two']
  differences = {field: _largest_difference(getattr(one, field),
                                            getattr(two, field))
                 for field in ('z', 'k', 'x', 'energy')}
  for key, value in one.diagnostics.items():
    if key in ('wall_time', 'problems'):
      continue
    differences[f'diagnostics.{key}'] = _largest_difference(
        value, two.diagnostics[key])
  return dict(differences=differences, traced_batches=batches,
              printed=printed,
              problems=[one.diagnostics['problems'],
                        two.diagnostics['problems']],
              generator_acceptance=one.diagnostics[
                  'generator_acceptance_rate'],
              acceptance=one.diagnostics['acceptance_rate'])


def _refusals(strategy):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.sampling import sample_latents  # pylint: disable=import-outside-toplevel
  model = _tiny_gan(strategy, [])
  messages = []

  @tf.function
  def traced():
    return sample_latents('rep', model, 8, 2, [1, 2], jit_compile=False,
                          strategy=strategy).z

  try:
    traced()
  except ValueError as e:
    messages.append(str(e))
  return messages


def _sample_mode(model_dir, out):
  """Exit status and standard output of `--mode=sample` on two logical CPUs."""
  from conftest import run_main_printed  # pylint: disable=import-outside-toplevel
  status, printed = run_main_printed(
      f'--model_dir={model_dir}', '--mode=sample', '--runtime.cpu_devices=2',
      '--runtime.strategy=mirrored', '--sampling.sampler=rep',
      '--sampling.calibrate=false', '--sampling.num_samples=64',
      '--sampling.steps=20', f'--sampling.output_dir={out}')
  return dict(status=status, stdout=printed)


def main(model_dir, out):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  devices = [d.name for d in tf.config.list_logical_devices('CPU')]
  strategy = tf.distribute.MirroredStrategy(devices)
  report = {name: _compare(name, strategy) for name in CASES}
  report['refusals'] = _refusals(strategy)
  report['sample_mode'] = _sample_mode(model_dir, out)
  print(json.dumps(report))


# -------------------------------------------------------------------- tests
@pytest.fixture(scope='module')
def sample_dirs(tmp_path_factory):
  """(a trained two-generator run, the output directory of its sampling)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from conftest import tiny_config  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.training import trainer  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp('distributed')
  config = tiny_config(root / 'run', **{
      'trainer.train_steps': 50, 'eval.every': 50, 'eval.num_samples': 500,
      'model.num_generators': 2})
  trainer.train(config, tf.distribute.get_strategy())
  return config.model_dir, root / 'samples'


@pytest.fixture(scope='module')
def report(sample_dirs):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run([sys.executable, os.path.abspath(__file__),
                           *map(str, sample_dirs)],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stdout + result.stderr
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('name', sorted(CASES))
def test_sharded_chains_give_the_one_device_samples(report, name):
  case = report[name]
  sampler, num_chains = CASES[name][:2]
  differences = case['differences']
  assert differences['k'] == 0
  for field, difference in differences.items():
    if field == 'diagnostics.energy_ess':
      # An autocorrelation estimate over the last 4 to 7 steps, which turns
      # rounding differences into other truncations (even negative sizes).
      continue
    assert difference <= TOLERANCE, (field, difference)
  assert case['problems'][0] == case['problems'][1]
  # One device evaluates all chains at once; each of the two replicas only
  # its own block (8 chains, or 8 and 7).
  assert max(case['traced_batches']['one']) == num_chains
  assert max(case['traced_batches']['two']) == -(-num_chains // 2)
  if sampler != 'none':
    assert case['acceptance'] > 0.
  if CASES[name][3].get('joint', True) and sampler != 'none':
    assert case['generator_acceptance'] > 0.  # joint (k, z) moves happened


def test_xla_on_logical_cpus_falls_back_to_uncompiled_with_a_note(report):
  printed = report['wl_shared_bias']['printed'].strip().splitlines()
  assert len(printed) == 1, printed
  # The compiled replicas cannot read each other's variables.
  assert printed[0] == ('sample_latents: XLA cannot compile the chains '
                        'sharded over 2 replicas (InvalidArgumentError); '
                        'running them uncompiled.')
  assert all(not report[name]['printed'] for name in CASES
             if name != 'wl_shared_bias')


def test_sharded_sampling_refuses_to_be_traced(report):
  assert len(report['refusals']) == 1
  assert 'runs eagerly' in report['refusals'][0]


def test_sample_mode_on_two_logical_cpus(report, sample_dirs):
  out = sample_dirs[1]
  result = report['sample_mode']
  # 4: written, but the health check of so short a run found a problem.
  assert result['status'] in (0, 4), result
  assert f'Wrote {out}' in result['stdout']
  assert ('sample_latents: XLA cannot compile the chains sharded over 2 '
          'replicas' in result['stdout'])
  with np.load(out / 'samples.npz') as data:
    assert data['z'].shape == (64, 2) and data['x'].shape == (64, 2)
    assert set(np.unique(data['k'])) <= {0, 1}
    assert np.isfinite(data['energy']).all()
  with open(out / 'metrics.json') as f:
    saved = json.load(f)
  assert saved['sampler'] == 'rep' and saved['mixture']['num_samples'] == 64
  assert 0. < saved['diagnostics']['acceptance_rate'] <= 1.
  assert saved['diagnostics']['energy_histogram'] and (
      sum(saved['diagnostics']['energy_histogram']) > 0)
  assert (out / 'samples.png').exists()


if __name__ == '__main__':
  sys.path.insert(0, REPO)
  main(*sys.argv[1:])
