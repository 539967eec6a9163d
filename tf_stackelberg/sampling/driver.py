"""The chain driver: runs transition kernels on many chains in compiled loops.

`Driver.run` runs one phase of a sampler: it bootstraps a kernel on the
chains' states, then makes `num_steps` transitions inside a `tf.while_loop`
(`run_steps`), chunk by chunk. Each chunk is one `tf.function` call
(XLA-compiled with `jit_compile=True`) of `chunk_steps` steps; the state, the
kernel results and the weighted reservoirs are handed from chunk to chunk, and
every step draws its stateless seed by folding the phase's step index into the
phase's seed, so that the chain does not depend on how it is cut into chunks.
After every chunk an optional `progress_callback(steps_done, total_steps)` is
called. Run eagerly, a phase returns eager tensors; run while a `tf.function`
is being traced (an exported endpoint), it builds the whole phase as one loop
in that graph, and `num_steps` and the number of chains may then be tensors.
The same seed gives the same chains for a given `jit_compile`; compiled and
uncompiled runs differ, because XLA generates stateless random numbers with
another algorithm.

Under a `tf.distribute` strategy of several replicas (`sharding.Replicas`)
every call runs on all replicas, each evaluating the model on its own block
of chains, and a phase returns the merged, full-size outputs: the same
chains as on one device (see `sharding`). Steps of a kernel that pools
statistics over all chains (`cross_chain`: the Wang-Landau bias and step
size) are then one call each, since their cross-replica sums cannot sit
inside a `tf.while_loop`.

`Chains` is what a sampler (`tf_stackelberg.sampling.samplers`) works with:
the model's energy, the settings, the initial states and seeds of one run,
and the construction of kernels on them, with or without moves of the
generator index (`joint`).
"""

import collections
import functools

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.common import salts
from tf_stackelberg.sampling.estimators import empty_reservoir
from tf_stackelberg.sampling.estimators import update_reservoir
from tf_stackelberg.sampling.joint import JointGeneratorKernel
from tf_stackelberg.sampling.unnest import get_outermost

__all__ = [
    'Chains',
    'Collection',
    'Draws',
    'Driver',
    'Phase',
    'Seeds',
    'current_energy',
    'run_steps',
    'stateless_seed',
]


class Phase(
    collections.namedtuple('Phase', [
        'state', 'results', 'initial_energy', 'energies', 'acceptance',
        'generator_changed', 'reservoir', 'num_steps', 'num_evaluations',
        'gradient'])):
  """What one phase of a sampler left behind.

  Attributes:
    state: the chains' final states.
    results: the kernel's final results.
    initial_energy: float `[chains]`, energies of the initial states.
    energies: float `[num_steps, chains]`, energies after each step.
    acceptance: float `[num_steps]`, mean acceptance of the latent moves.
    generator_changed: float `[num_steps]`, fraction of chains whose
      generator index changed.
    reservoir: the weighted reservoirs (`estimators.Reservoir`) if the phase
      collected states, else `None`.
    num_steps: steps of the phase.
    num_evaluations: latent points passed through `G` and `D`, bootstrap and
      generator moves included.
    gradient: whether those evaluations back-propagate.
  """
  __slots__ = ()


class Collection(
    collections.namedtuple('Collection', ['start', 'log_weight_fn'])):
  """Which states of a phase feed the chains' weighted reservoirs.

  Attributes:
    start: first step (counted from 0 within the phase) whose state is
      offered.
    log_weight_fn: callable `kernel_results -> [chains]` log weights of the
      states the results describe.
  """
  __slots__ = ()


class Draws(
    collections.namedtuple('Draws', [
        'z', 'k', 'energy', 'phases', 'bins', 'step_size', 'extra'])):
  """What a sampler returns.

  Attributes:
    z: float `[num_samples, latent_dim]` latents.
    k: int32 `[num_samples]` generator indices.
    energy: float `[num_samples]`, `E(z, k)`.
    phases: tuple of `Phase`s run (the last is the main one; empty for a
      sampler without chains).
    bins: `(E_lo, E_hi)` of the reported energy histogram, or `None` for
      equal bins between the extremes of the main phase.
    step_size: float scalar, the final step size (0 without a step).
    extra: `dict` of further diagnostics.
  """
  __slots__ = ()


class Seeds(
    collections.namedtuple('Seeds', ['z', 'k', 'warmup', 'chain',
                                     'resample'])):
  """The stateless seeds of one run: initial `z` and `k`, phases, resampling."""
  __slots__ = ()


def stateless_seed(seed):
  """int32 `[2]` stateless seed from an int32 or int64 pair (or a list).

  An int64 seed is reduced to its low 32 bits per entry, so that int32 and
  int64 seeds of the same (int32-range) values give the same chains.
  """
  if tf.is_tensor(seed) and seed.dtype == tf.int64:
    seed = tf.cast(seed, tf.int32)
  return tfp.random.sanitize_seed(seed)


def current_energy(results):
  """Energies of the current states: `energy`, else `-target_log_prob`."""
  energy = get_outermost(results, 'energy')
  if energy is not None:
    return energy
  return -get_outermost(results, 'target_log_prob')


def _current_acceptance(results, like):
  is_accepted = get_outermost(results, 'is_accepted')
  if is_accepted is None:  # unadjusted Langevin moves every chain
    return tf.ones_like(like)
  return tf.cast(is_accepted, like.dtype)


def _generator_changed(old_state, new_state, like, chain_mean):
  """Fraction of chains whose generator index changed (joint states only)."""
  if not isinstance(new_state, (list, tuple)):
    return tf.zeros([], like.dtype)
  return chain_mean(tf.cast(tf.not_equal(old_state[0], new_state[0]),
                            like.dtype))


def run_steps(kernel, state, results, seed, start, num_steps, reservoir=None,
              collection=None, *, shard=None, unroll=False):
  """`num_steps` transitions of `kernel` in one `tf.while_loop`.

  Step `i` uses the seed `fold_in(seed, start + i)`. With a `reservoir` and
  a `collection`, the state after every step whose index `start + i` is at
  least `collection.start` is offered to its chain's reservoir with log
  weight `collection.log_weight_fn(results)`.

  Args:
    kernel: `TransitionKernel`.
    state: current state.
    results: `kernel`'s results at `state`.
    seed: int32 `[2]` stateless seed of the phase.
    start: int32 scalar, index of the first step within the phase.
    num_steps: int or int32 scalar `Tensor`.
    reservoir: optional `estimators.Reservoir`.
    collection: `Collection` (with `reservoir`).
    shard: `sharding.ChainShard` of the replica running the steps, or
      `None` on one device; the acceptance and generator-move rates are then
      this replica's shares of the means over all chains
      (`ChainShard.partial_mean`), to be summed over the replicas.
    unroll: make the steps one after the other without a loop (a Python
      int `num_steps`), so that they may contain cross-replica sums.

  Returns:
    `(state, results, energies [num_steps, chains], acceptance [num_steps],
    generator_changed [num_steps], reservoir)`.
  """
  chain_mean = tf.reduce_mean if shard is None else shard.partial_mean
  energy0 = current_energy(results)
  dtype = energy0.dtype
  energies = tf.TensorArray(dtype, size=num_steps,
                            element_shape=energy0.shape)
  accepts = tf.TensorArray(dtype, size=num_steps, element_shape=[])
  k_accepts = tf.TensorArray(dtype, size=num_steps, element_shape=[])
  collect_from = None
  if reservoir is not None:
    collect_from = tf.convert_to_tensor(collection.start, tf.int32)

  def body(i, state, results, energies, accepts, k_accepts, reservoir):
    step = start + i
    step_seed = tf.random.experimental.stateless_fold_in(
        seed, tf.cast(step, seed.dtype))
    new_state, new_results = kernel.one_step(state, results, seed=step_seed)
    energy = current_energy(new_results)
    energies = energies.write(i, energy)
    accepts = accepts.write(
        i, chain_mean(_current_acceptance(new_results, energy)))
    k_accepts = k_accepts.write(i, _generator_changed(state, new_state,
                                                      energy, chain_mean))
    if reservoir:
      log_weight = collection.log_weight_fn(new_results)
      log_weight = tf.where(step >= collect_from, log_weight,
                            tf.fill(tf.shape(log_weight),
                                    tf.constant(-np.inf, dtype)))
      reservoir = update_reservoir(
          reservoir, new_state, energy, log_weight,
          tf.random.experimental.stateless_fold_in(step_seed, 1))
    return (i + 1, new_state, new_results, energies, accepts, k_accepts,
            reservoir)

  # `while_loop` takes no `None`; an empty tuple stands for no reservoir.
  loop_vars = (tf.constant(0), state, results, energies, accepts, k_accepts,
               () if reservoir is None else reservoir)
  if unroll:
    for _ in range(int(num_steps)):
      loop_vars = body(*loop_vars)
  else:
    loop_vars = tf.while_loop(lambda i, *_: i < num_steps, body, loop_vars,
                              maximum_iterations=num_steps)
  _, state, results, energies, accepts, k_accepts, reservoir = loop_vars
  return (state, results, energies.stack(), accepts.stack(),
          k_accepts.stack(), reservoir or None)


def _bootstrap(build_kernel, state, kernel_args):
  return build_kernel(*kernel_args).bootstrap_results(state)


def _run_chunk(build_kernel, state, results, kernel_args, seed, start,
               reservoir, *, num_steps, collection):
  return run_steps(build_kernel(*kernel_args), state, results, seed, start,
                   num_steps, reservoir, collection)


def _bootstrap_shard(build_kernel, shard, state, kernel_args):
  results = build_kernel(*kernel_args, shard=shard).bootstrap_results(state)
  return results, current_energy(results)


def _run_shard_chunk(build_kernel, shard, state, results, kernel_args, seed,
                     start, reservoir, *, num_steps, collection, unroll):
  return run_steps(build_kernel(*kernel_args, shard=shard), state, results,
                   seed, start, num_steps, reservoir, collection, shard=shard,
                   unroll=unroll)


class Driver(object):
  """Runs kernels in chunks of compiled `tf.while_loop`s.

  Args:
    jit_compile: compile the chunks (and bootstraps) with XLA.
    chunk_steps: transitions per compiled call (`None`: a phase in one call).
    progress_callback: optional `callable(steps_done, total_steps)` called
      after every chunk (eager execution only).
    total_steps: the `total_steps` reported to `progress_callback`.
    replicas: optional `sharding.Replicas`: run every call on the replicas
      of a strategy, each on its block of chains (eager execution only).
  """

  def __init__(self, jit_compile=True, chunk_steps=None,
               progress_callback=None, total_steps=None, replicas=None):
    if chunk_steps is not None and int(chunk_steps) < 1:
      raise ValueError('`chunk_steps` must be positive.')
    self._eager = tf.executing_eagerly()
    if replicas is not None and not self._eager:
      raise ValueError('Sharded chains run eagerly.')
    self._jit_compile = jit_compile
    self._chunk_steps = None if chunk_steps is None else int(chunk_steps)
    self._progress_callback = progress_callback
    self._total_steps = total_steps
    self._replicas = replicas

  @property
  def eager(self):
    """Whether the driver runs eagerly (else it builds into a graph)."""
    return self._eager

  @property
  def replicas(self):
    """The `sharding.Replicas` the chains are sharded over, or `None`."""
    return self._replicas

  def map_rows(self, fn, *tensors):
    """`fn(*tensors)` for a row-wise `fn` (energies, samples), compiled.

    Under a strategy each replica evaluates its own block of rows.
    """
    if self._replicas is None:
      return self.compile(fn)(*tensors)
    return self._replicas.map_rows(fn, tensors, self._jit_compile)

  def _chunks(self, num_steps):
    """Step counts of the compiled calls of a phase of `num_steps` steps."""
    static_steps = tf.get_static_value(num_steps)
    if not self._eager or static_steps is None:
      return [num_steps]
    num = int(static_steps)
    chunk = num if self._chunk_steps is None else min(self._chunk_steps, num)
    return [min(chunk, num - done) for done in range(0, num, chunk)]

  def compile(self, fn):
    """`fn` as a `tf.function` when eager, else `fn` itself."""
    if not self._eager:
      return fn
    return tf.function(fn, jit_compile=self._jit_compile, autograph=False)

  def run(self, build_kernel, kernel_args, state, seed, num_steps, *,
          steps_before=0, collection=None, cross_chain=False):
    """Bootstraps `build_kernel(*kernel_args)` at `state`, runs `num_steps`.

    Args:
      build_kernel: callable `(*kernel_args, shard=None) ->
        TransitionKernel`, called inside the compiled functions; under a
        strategy it gets the replica's `sharding.ChainShard`.
      kernel_args: tuple of the `Tensor`s (or `None`s) the kernel is built
        from; they are passed to the compiled functions as arguments.
      state: initial state.
      seed: int32 `[2]` stateless seed of the phase.
      num_steps: int (or, in a graph, int32 scalar `Tensor`) transitions.
      steps_before: steps made by earlier phases (for the progress report).
      collection: optional `Collection` feeding weighted reservoirs.
      cross_chain: whether the kernel's steps pool statistics over all
        chains (under a strategy each step is then one call).

    Returns:
      `(state, results, initial_energy, energies, acceptance,
      generator_changed, reservoir)`, see `Phase`; full-size tensors under
      a strategy too.
    """
    if self._replicas is not None:
      return self._run_sharded(build_kernel, kernel_args, state, seed,
                               num_steps, steps_before, collection,
                               cross_chain)
    results = self.compile(functools.partial(_bootstrap, build_kernel))(
        state, kernel_args)
    initial_energy = current_energy(results)
    reservoir = None
    if collection is not None:
      reservoir = empty_reservoir(state, initial_energy)
    chunks = self._chunks(num_steps)
    compiled = {}
    traces = []
    done = 0
    for n in chunks:
      key = n if isinstance(n, int) else None
      if key not in compiled:
        compiled[key] = self.compile(functools.partial(
            _run_chunk, build_kernel, num_steps=n, collection=collection))
      state, results, energies, accepts, k_accepts, reservoir = compiled[key](
          state, results, kernel_args, seed, tf.constant(done, tf.int32),
          reservoir)
      traces.append((energies, accepts, k_accepts))
      if self._eager:
        done += n
        if self._progress_callback is not None:
          self._progress_callback(steps_before + done, self._total_steps)
    energies, accepts, k_accepts = (
        t[0] if len(t) == 1 else tf.concat(t, axis=0) for t in zip(*traces))
    return (state, results, initial_energy, energies, accepts, k_accepts,
            reservoir)

  def _run_sharded(self, build_kernel, kernel_args, state, seed, num_steps,
                   steps_before, collection, cross_chain):
    """`run` on the replicas: per-replica values between calls, merged at
    the end of the phase."""
    replicas = self._replicas
    results, initial_energy = replicas.function(
        functools.partial(_bootstrap_shard, build_kernel),
        self._jit_compile)(state, kernel_args)
    initial_energy = replicas.merge_rows(initial_energy)
    reservoir = None
    if collection is not None:
      reservoir = empty_reservoir(state, initial_energy)
    state, reservoir = replicas.replicate((state, reservoir))
    compiled = {}
    traces = []
    done = 0
    for n in self._chunks(num_steps):
      # A cross-replica sum inside a step cannot sit in a `tf.while_loop`.
      for calls in ([1] * n if cross_chain else [n]):
        if calls not in compiled:
          compiled[calls] = replicas.function(functools.partial(
              _run_shard_chunk, build_kernel, num_steps=calls,
              collection=collection, unroll=cross_chain), self._jit_compile)
        state, results, energies, accepts, k_accepts, reservoir = (
            compiled[calls](state, results, kernel_args, seed,
                            tf.constant(done, tf.int32), reservoir))
        traces.append((replicas.merge_rows(energies, axis=1),
                       replicas.sum(accepts), replicas.sum(k_accepts)))
        done += calls
      if self._progress_callback is not None:
        self._progress_callback(steps_before + done, self._total_steps)
    energies, accepts, k_accepts = (
        t[0] if len(t) == 1 else tf.concat(t, axis=0) for t in zip(*traces))
    state, results, reservoir = replicas.merge_rows((state, results,
                                                     reservoir))
    return (state, results, initial_energy, energies, accepts, k_accepts,
            reservoir)


class Chains(object):
  """The chains of one sampling run and the kernels run on them.

  The chains start from `z ~ p0` (the model's prior) and a uniform generator
  index `k`, drawn from the run's seed. With `joint` (the setting, and more
  than one generator) the state is `[k, z]` and the generator index moves
  too; otherwise the state is `z` and every chain keeps its `k`.

  Args:
    model: `energy.LatentModel`.
    settings: `settings.SamplerSettings`.
    num_chains: number of chains (int, or int32 scalar `Tensor` in a graph).
    num_steps: the run's budget of transitions per chain (int, or int32
      scalar `Tensor` in a graph).
    seed: stateless seed of the run, int32 or int64 `[2]`.
    driver: `Driver`.
  """

  def __init__(self, model, settings, num_chains, num_steps, seed, driver):
    self.model = model
    self.settings = settings
    self.num_chains = num_chains
    self.num_steps = num_steps
    self.driver = driver
    self.energy_fn = model.energy_fn()
    self.joint = bool(settings.joint) and model.num_generators > 1
    self.seeds = Seeds(*tfp.random.split_seed(
        stateless_seed(seed), n=5, salt=salts.SAMPLE_LATENTS))
    z = model.prior.sample([num_chains, model.latent_dim], self.seeds.z,
                           dtype=model.dtype)
    k = tf.random.stateless_uniform([num_chains], seed=self.seeds.k, minval=0,
                                    maxval=model.num_generators,
                                    dtype=tf.int32)
    self.k_fixed = k
    self.initial_state = [k, z] if self.joint else z

  def split(self, state):
    """`(z, k)` of a chain state."""
    if self.joint:
      return state[1], state[0]
    return state, self.k_fixed

  def kernel(self, make_latent_kernel, make_joint_kernel, k_fixed,
             *kernel_args, shard=None, cross_chain=False):
    """The kernel over the chain state.

    Args:
      make_latent_kernel: callable `(energy_fn_of_z, *kernel_args) ->
        TransitionKernel` over `z`.
      make_joint_kernel: optional callable `(energy_fn, num_generators,
        *kernel_args) -> TransitionKernel` over `[k, z]`, for samplers whose
        proposals move `k` themselves; by default a joint state alternates
        generator moves with the latent kernel (`JointGeneratorKernel`).
      k_fixed: int32 `[chains]` generator indices of chains of fixed `k`.
      *kernel_args: further arguments of the factories.
      shard: the `sharding.ChainShard` of the replica building the kernel,
        or `None` on one device; the energy is then evaluated on the
        replica's rows only.
      cross_chain: the factories pool statistics over all chains and take
        the keyword argument `shard`.

    Returns:
      The `TransitionKernel`.
    """
    energy_fn = self.energy_fn
    if shard is not None:
      energy_fn = shard.local_energy_fn(energy_fn)
    if cross_chain:
      make_latent_kernel = functools.partial(make_latent_kernel, shard=shard)
      if make_joint_kernel is not None:
        make_joint_kernel = functools.partial(make_joint_kernel, shard=shard)
    if not self.joint:
      return make_latent_kernel(lambda z: energy_fn(z, k_fixed), *kernel_args)
    if make_joint_kernel is not None:
      return make_joint_kernel(energy_fn, self.model.num_generators,
                               *kernel_args)
    return JointGeneratorKernel(
        energy_fn, self.model.num_generators,
        functools.partial(_apply, make_latent_kernel, kernel_args),
        generator_move_every=self.settings.generator_move_every)

  def run(self, make_latent_kernel, state, seed, num_steps, *, kernel_args=(),
          make_joint_kernel=None, steps_before=0, collection=None,
          gradient=True, cross_chain=False):
    """Runs one phase of `num_steps` transitions from `state`.

    Args:
      make_latent_kernel: see `kernel`.
      state: the chains' states.
      seed: stateless seed of the phase.
      num_steps: transitions (positive).
      kernel_args: tuple of `Tensor`s passed on to the kernel factories.
      make_joint_kernel: see `kernel`.
      steps_before: steps of earlier phases, for the progress report.
      collection: optional `Collection` feeding weighted reservoirs.
      gradient: whether the kernel's evaluations back-propagate.
      cross_chain: whether the kernel pools statistics over all chains in
        its steps (a shared bias, a mean acceptance); its factories then
        take the keyword argument `shard` (see `kernel`).

    Returns:
      `Phase`.
    """
    static_steps = tf.get_static_value(num_steps)
    if static_steps is not None and int(static_steps) < 1:
      raise ValueError(f'`num_steps` must be positive, got {static_steps}.')
    build = functools.partial(self.kernel, make_latent_kernel,
                              make_joint_kernel, cross_chain=cross_chain)
    outputs = self.driver.run(build, (self.k_fixed,) + tuple(kernel_args),
                              state, seed, num_steps,
                              steps_before=steps_before, collection=collection,
                              cross_chain=cross_chain)
    moves = 0
    if self.joint and make_joint_kernel is None:
      moves = -(-num_steps // self.settings.generator_move_every)
    return Phase(*outputs, num_steps=num_steps,
                 num_evaluations=self.num_chains * (1 + num_steps + moves),
                 gradient=gradient)

  def final_states(self, make_latent_kernel, *, make_joint_kernel=None,
                   gradient=True, step_size=0.):
    """Runs all `num_steps` steps and returns the final states, unweighted.

    Args:
      make_latent_kernel: see `kernel`.
      make_joint_kernel: see `kernel`.
      gradient: whether the kernel's evaluations back-propagate.
      step_size: the step size to report.

    Returns:
      `Draws`.
    """
    phase = self.run(make_latent_kernel, self.initial_state, self.seeds.chain,
                     self.num_steps, make_joint_kernel=make_joint_kernel,
                     gradient=gradient)
    z, k = self.split(phase.state)
    return Draws(z, k, current_energy(phase.results), phases=(phase,),
                 bins=None,
                 step_size=tf.constant(step_size, self.model.dtype),
                 extra={})


def _apply(make_kernel, kernel_args, energy_fn):
  return make_kernel(energy_fn, *kernel_args)
