"""`sample_latents`: the one entry point that runs a latent sampler on a GAN.

The command line, the Python API and the exported `mcmc_sample` endpoint
all call it. It draws `num_samples` latents `(k, z)` from the energy
`E(z, k) = -log p0(z) - d_c(G_k(z))` with a sampler of `registry.SAMPLERS`
and returns them with their samples `x = G_k(z)`, energies and diagnostics:

| name | chain |
|---|---|
| `'wl'` | Wang-Landau / SAMC flattening around MALA, adaptive step, importance resampling |
| `'rep'` | MALA on `E` (REP-GAN) with a fixed step |
| `'ddls'` | unadjusted Langevin on `E` (DDLS) with a fixed step |
| `'mh'` | independence Metropolis-Hastings with prior proposals (MH-GAN) |
| `'isir'` | iterated sampling-importance-resampling, `N` prior proposals a step (Ex2MCMC's global kernel) |
| `'none'` | no chain: `z ~ p0`, `k` uniform, i.e. the generator itself |

One chain per returned sample: `num_samples` chains make `num_steps`
transitions in parallel, and their final states are returned, except for
`'wl'`, whose chains keep importance-weighted states of the second half of
their trajectories, resampled into draws of `exp(-E)` (see
`samplers/wl.py`).

With several generators and `settings.joint` the generator index is part of
the state and moves by Metropolis-Hastings (`joint.JointGeneratorKernel`; for
`'mh'` the proposal draws `k` together with `z`), so the chains target
`pi(k, z) ~ exp(-E(z, k))`: a chain can leave a generator that makes poor
samples. Otherwise each chain keeps the `k` it was given (uniformly at
random), so the output has a uniform generator index and
`z | k ~ exp(-E(z, k))`.

The chains start from the model's latent prior `p0` (`LatentModel.prior`).
With a bounded prior (`U[-1, 1]^D`) they stay in its box: `'rep'` and
`'wl'` reject the Langevin proposals outside it (their energy is infinite),
`'mh'` proposes from `p0` itself, and `'ddls'`, which has no rejection,
reflects its steps at the faces (`samplers/ddls.py`).

Execution (`engine`): compiled `tf.while_loop`s, chunk by chunk; the same
seed gives the same samples for a given `jit_compile` whatever the chunking.
Called eagerly, the function returns numpy values; called while a
`tf.function` is being traced (the exported endpoint), it builds the whole
run in that graph and returns tensors, and `num_samples` and `num_steps` may
then be scalar tensors.

Under a `tf.distribute` strategy of several replicas (`strategy`), the
chains are sharded over the replicas: each evaluates the generator and the
discriminator on its own block of chains, and every random number of a
chain is the one of the one-device run, so that the samples, energies and
diagnostics are those of a one-device run of the same seed, within float
rounding; a bias shared by the Wang-Landau chains is updated from the
visits of all chains of all replicas (`sharding`). Such a run is driven
eagerly; where XLA cannot compile the sharded calls (logical CPU devices),
it prints a one-line note and runs uncompiled.

Along the chain (`record_steps`, eager calls only): the chains' states at
the given steps (0: the initial states `z ~ p0`, the generator's own
samples) are returned too, in `SampleResult.snapshots`, so that metrics can
be followed along the chain and the chains stopped early. They are the raw
states of the chains at that step, counted over all phases: for `'wl'` the
unweighted states of its warm-up or flattened run, not importance-resampled
draws; for `'none'`, which has no chain, only step 0 is recorded.

The energy of every sampler is the model's with the discriminator term at
the temperature `settings.temperature` (`LatentModel.tempered`), and so are
the energies returned.

Cost accounting. `diagnostics['num_energy_evaluations']` counts latent points
passed through `G` and `D`; per chain and step, `'rep'`, `'ddls'`, `'wl'`
make one gradient evaluation, plus one for the generator move in joint mode,
and `'mh'` one forward evaluation (also in joint mode), `'isir'`
`settings.isir_proposals` of them. Returning `x` costs
one more pass of `G` (not of `D`) on the returned latents, not counted.
"""

import collections
import time

import tensorflow as tf

from tf_stackelberg.sampling import sharding
from tf_stackelberg.sampling.diagnostics import health_problems
from tf_stackelberg.sampling.diagnostics import summarize
from tf_stackelberg.sampling.chains import Chains
from tf_stackelberg.sampling.engine import Engine
from tf_stackelberg.sampling.registry import SAMPLERS
from tf_stackelberg.sampling.settings import DEFAULTS
from tf_stackelberg.sampling.settings import min_num_steps

__all__ = [
    'ChainSnapshot',
    'SampleResult',
    'sample_latents',
]

SampleResult = collections.namedtuple(
    'SampleResult', ['z', 'k', 'x', 'energy', 'diagnostics', 'snapshots'],
    defaults=(None,))
SampleResult.__doc__ = """What `sample_latents` returns.

Attributes:
  z: float `[num_samples, latent_dim]` latents.
  k: int32 `[num_samples]` generator indices.
  x: `generate_fn(z, k)`, the samples.
  energy: float `[num_samples]`, `E(z, k)`.
  diagnostics: `dict` of numpy arrays and Python numbers (tensors when built
    inside a `tf.function`); see `diagnostics`.
  snapshots: `dict` from each recorded chain step (int) to its
    `ChainSnapshot`, in increasing steps; empty without `record_steps`.
"""

ChainSnapshot = collections.namedtuple('ChainSnapshot',
                                       ['z', 'k', 'x', 'energy'])
ChainSnapshot.__doc__ = """The chains' states at one recorded step (numpy).

Attributes:
  z: float `[num_samples, latent_dim]` latents.
  k: int32 `[num_samples]` generator indices.
  x: `generate_fn(z, k)`.
  energy: float `[num_samples]`, `E(z, k)`.
"""


def _static_size(name, value, minimum):
  static = tf.get_static_value(value)
  if static is None:
    return value
  if int(static) < minimum:
    raise ValueError(f'`{name}` must be at least {minimum}, got {static}.')
  return int(static)


def _checked_num_steps(sampler, num_steps, settings):
  """`num_steps`, checked against `min_num_steps` (statically if possible)."""
  minimum = min_num_steps(sampler, settings)
  message = f'`num_steps` must be at least {minimum} for sampler {sampler!r}'
  static = tf.get_static_value(num_steps)
  if static is not None:
    if int(static) < minimum:
      raise ValueError(f'{message}, got {int(static)}.')
    return int(static)
  # A size known only when the graph runs (the exported endpoint).
  num_steps = tf.cast(num_steps, tf.int32)
  with tf.control_dependencies([tf.debugging.assert_greater_equal(
      num_steps, tf.constant(minimum, tf.int32), message=message + '.')]):
    return tf.identity(num_steps)


def _checked_record_steps(record_steps, num_steps, has_chains):
  """The sorted distinct `record_steps`, each in `[0, num_steps]` (any
  non-negative step for a sampler without chains, which ignores `num_steps`)."""
  steps = sorted({int(step) for step in record_steps or ()})
  if steps and not tf.executing_eagerly():
    raise ValueError('`record_steps` needs an eager call of `sample_latents`.')
  if steps and (steps[0] < 0 or (has_chains and steps[-1] > num_steps)):
    raise ValueError(f'`record_steps` must lie in [0, num_steps={num_steps}], '
                     f'got {steps}.')
  return tuple(steps)


def _snapshots(engine, chains, draws, generate):
  """The `ChainSnapshot`s of the recorded steps, from the engine's states.

  A sampler without chains has only its draws, which are step 0.
  """
  snapshots = {}
  recorded = dict(engine.snapshots)
  if not draws.phases and 0 in engine.record_steps:
    recorded[0] = None
  for step in sorted(recorded):
    if recorded[step] is None:
      z, k, energy = draws.z, draws.k, draws.energy
    else:
      z, k = chains.split(recorded[step].state)
      energy = recorded[step].energy
    snapshots[step] = ChainSnapshot(*(_to_numpy(t) for t in (
        z, k, generate(z, k), energy)))
  return snapshots


def sample_latents(sampler, model, num_samples, num_steps, seed,
                   settings=None, *, chunk_steps=None, progress_callback=None,
                   jit_compile=True, strategy=None, record_steps=()):
  """Draws latents of a trained GAN with a latent-space MCMC sampler.

  Args:
    sampler: a name in `registry.SAMPLERS` (`SAMPLERS.names()`).
    model: `energy.LatentModel`: generator, discriminator logit, latent
      dimension, number of generators, calibration, latent prior.
    num_samples: number of chains and of returned samples (an int, or an
      int32 scalar `Tensor` inside a `tf.function`).
    num_steps: transitions per chain, every phase of the sampler included
      (for `'wl'` the warm-up that sets its energy range), so every sampler
      gets the same budget; ignored by `'none'`. At least
      `min_num_steps(sampler, settings)` of `settings.py` (2 for `'wl'`
      with the automatic range, 1 for the other chains, 0 for `'none'`); a
      tensor `num_steps` is checked when the graph runs.
    seed: stateless seed, int32 or int64 `[2]` (int64 values are reduced to
      their low 32 bits).
    settings: `SamplerSettings` (defaults if `None`).
    chunk_steps: transitions per compiled call (`None`: a phase in one).
    progress_callback: optional `callable(steps_done, num_steps)` called
      after every chunk (eager execution only).
    jit_compile: compile the chunks with XLA (eager execution only; inside a
      `tf.function` the caller's compilation applies). Under a strategy,
      a compiled call that fails (XLA on logical CPU devices cannot reach
      the other devices' variables) makes the run start again uncompiled,
      after a one-line note on standard output.
    strategy: optional `tf.distribute.Strategy` (its replicas are the model
      variables' devices, e.g. the strategy the GAN was built under). With
      several replicas the chains are sharded over them: the replicas hold
      blocks of `num_samples // R` or one more chains, and the results are
      those of a one-device run (module docstring). Needs eager execution
      and a call from outside `strategy.run`.
    record_steps: chain steps (ints in `[0, num_steps]`, 0 for the initial
      states) whose states are returned in `SampleResult.snapshots` (eager
      calls only; module docstring). The default records none, and the run
      is then exactly the one without this argument.

  Returns:
    `SampleResult(z, k, x, energy, diagnostics)`; the diagnostics are listed
    in `diagnostics` (module docstring), and `'wl'` adds `theta` (final
    bias), `visit_counts`, `energy_range` `[2]`, `target_bin_probs` `[M]`
    (the desired visits `omega`), `collected_histogram` `[M]` (visits of
    the collected steps), `initial_above_range` (share of the starting
    states above `E_hi`), `log_weights` `[num_samples]` (normalised log
    total weights of the chains' weighted samples, before any resampling)
    and `unweighted_z`, `unweighted_k`, `unweighted_energy` (the chains'
    final states, not reweighted: the WL-GAN reference code's output).
    Eagerly, also `wall_time` (seconds) and `problems`, the list of str of
    `diagnostics.health_problems` (empty for a healthy run); inside a
    `tf.function` there is no `problems` entry.

  Raises:
    ConfigError: for an unknown sampler (a `ValueError`).
    ValueError: for invalid sizes, before any work: `num_samples < 1`, or
      "`num_steps` must be at least N for sampler 'X'" when `num_steps` is
      below `min_num_steps(sampler, settings)`; for a strategy of several
      replicas inside a `tf.function` or `strategy.run`.
    tf.errors.InvalidArgumentError: when run, for a tensor `num_steps`
      below that minimum.
  """
  run_sampler = SAMPLERS.get(sampler).run
  settings = DEFAULTS if settings is None else settings
  num_samples = _static_size('num_samples', num_samples, 1)
  num_steps = _checked_num_steps(sampler, num_steps, settings)
  record_steps = _checked_record_steps(
      record_steps, num_steps, min_num_steps(sampler, settings) > 0)
  replicas = sharding.replicas_of(strategy, num_samples)
  start_time = time.time()

  def run(jit):
    engine = Engine(jit_compile=jit, chunk_steps=chunk_steps,
                    progress_callback=progress_callback, total_steps=num_steps,
                    replicas=replicas, record_steps=record_steps)
    chains = Chains(model, settings, num_samples, num_steps, seed, engine)
    draws = run_sampler(chains)

    def generate(z, k):
      if replicas is None:
        return model.generate_fn(z, k)
      return replicas.map_rows(model.generate_fn, (z, k))

    snapshots = _snapshots(engine, chains, draws, generate)
    return engine, draws, generate(draws.z, draws.k), snapshots

  try:
    engine, draws, x, snapshots = run(jit_compile)
  except sharding.ShardedXlaError as e:
    print(f'sample_latents: XLA cannot compile the chains sharded over '
          f'{replicas.num_replicas} replicas ({e}); running them uncompiled.',
          flush=True)
    engine, draws, x, snapshots = run(False)
  diagnostics = summarize(draws, num_samples, settings.num_bins)
  result = SampleResult(draws.z, draws.k, x, draws.energy, diagnostics,
                        snapshots)
  if not engine.eager:
    return result
  diagnostics = {key: _to_numpy(value) for key, value in diagnostics.items()}
  diagnostics['wall_time'] = time.time() - start_time
  diagnostics['problems'] = health_problems(diagnostics, sampler)
  return SampleResult(*(_to_numpy(t) for t in result[:4]),
                      diagnostics=diagnostics, snapshots=snapshots)


def _to_numpy(value):
  if not tf.is_tensor(value):
    return value
  value = value.numpy()
  return value.item() if value.ndim == 0 else value
