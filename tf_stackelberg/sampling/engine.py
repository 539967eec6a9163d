"""The execution engine: runs transition kernels on many chains in compiled loops.

`Engine.run` runs one phase of a sampler: it bootstraps a kernel on the
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

Snapshots along the chain (`record_steps`, eager execution only): the
engine cuts the chunks of a phase at the recorded steps, counted over all
the phases of a sampler (`steps_before` plus the steps done; step 0 is the
chains' initial states), and keeps the chains' states and energies there in
`Engine.snapshots`. Cutting a chunk changes no number of the chains, as the
step seeds do not depend on the chunks; it only compiles calls of more
lengths.

What a sampler works with is `chains.Chains`, which builds the kernels and
runs them here.
"""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.sampling.estimators import empty_reservoir
from tf_stackelberg.sampling.estimators import update_reservoir
from tf_stackelberg.sampling.unnest import get_outermost

__all__ = [
    'Collection',
    'Engine',
    'Snapshot',
    'PhaseRun',
    'current_energy',
    'run_steps',
    'stateless_seed',
]


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


class PhaseRun(
    collections.namedtuple('PhaseRun', [
        'state', 'results', 'initial_energy', 'energies', 'acceptance',
        'generator_changed', 'reservoir'])):
  """What `Engine.run` leaves behind: the chains' ends and their traces.

  Attributes:
    state: the chains' final states.
    results: the kernel's final results.
    initial_energy: float `[chains]`, energies of the initial states.
    energies: float `[num_steps, chains]`, energies after each step.
    acceptance: float `[num_steps]`, mean acceptance of the latent moves.
    generator_changed: float `[num_steps]`, fraction of chains whose
      generator index changed.
    reservoir: the weighted reservoirs (`estimators.Reservoir`) if the run
      collected states, else `None`.
  """
  __slots__ = ()


class Snapshot(collections.namedtuple('Snapshot', ['state', 'energy'])):
  """The chains at a recorded step: their states and energies `[chains]`."""
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


def _bootstrap(kernel_spec, shard, state, kernel_args):
  """The kernel's results at `state`."""
  return kernel_spec.build(kernel_args, shard).bootstrap_results(state)


class _ChunkFn(object):
  """One compiled call of a phase: `num_steps` transitions of the kernel.

  Called as `(shard, state, results, kernel_args, seed, start, reservoir)`;
  `shard` is `None` on one device.
  """

  def __init__(self, kernel_spec, num_steps, collection, unroll):
    self._kernel_spec = kernel_spec
    self._num_steps = num_steps
    self._collection = collection
    self._unroll = unroll

  def __call__(self, shard, state, results, kernel_args, seed, start,
               reservoir):
    return run_steps(self._kernel_spec.build(kernel_args, shard), state,
                     results, seed, start, self._num_steps, reservoir,
                     self._collection, shard=shard, unroll=self._unroll)


class _OneDevice(object):
  """Where an `Engine` without replicas runs its calls: this device."""

  def __init__(self, engine):
    self._engine = engine

  def bootstrap(self, kernel_spec, state, kernel_args):
    results = self._engine.compile(
        lambda *args: _bootstrap(kernel_spec, None, *args))(state,
                                                            kernel_args)
    return results, current_energy(results)

  def calls(self, num_steps, cross_chain):
    del cross_chain  # pooled statistics are plain means here
    return [num_steps]

  def unroll(self, cross_chain):
    del cross_chain  # the steps' statistics need no cross-replica sum
    return False

  def compile_chunk(self, chunk_fn):
    return self._engine.compile(lambda *args: chunk_fn(None, *args))

  def distribute(self, values):
    return values

  def merge_trace(self, energies, accepts, k_accepts):
    return energies, accepts, k_accepts

  def merge_rows(self, values):
    return values


class _Sharded(object):
  """Where an `Engine` with replicas runs its calls: on every replica, with
  per-replica values between the calls, merged at the end of a phase."""

  def __init__(self, replicas, jit_compile):
    self._replicas = replicas
    self._jit_compile = jit_compile

  def bootstrap(self, kernel_spec, state, kernel_args):

    def bootstrap(shard, state, kernel_args):
      results = _bootstrap(kernel_spec, shard, state, kernel_args)
      return results, current_energy(results)

    results, initial_energy = self._replicas.function(
        bootstrap, self._jit_compile)(state, kernel_args)
    return results, self._replicas.merge_rows(initial_energy)

  def calls(self, num_steps, cross_chain):
    # A cross-replica sum inside a step cannot sit in a `tf.while_loop`.
    return [1] * num_steps if cross_chain else [num_steps]

  def unroll(self, cross_chain):
    return cross_chain

  def compile_chunk(self, chunk_fn):
    return self._replicas.function(chunk_fn, self._jit_compile)

  def distribute(self, values):
    return self._replicas.replicate(values)

  def merge_trace(self, energies, accepts, k_accepts):
    return (self._replicas.merge_rows(energies, axis=1),
            self._replicas.sum(accepts), self._replicas.sum(k_accepts))

  def merge_rows(self, values):
    return self._replicas.merge_rows(values)


class Engine(object):
  """Runs kernels in chunks of compiled `tf.while_loop`s.

  Args:
    jit_compile: compile the chunks (and bootstraps) with XLA.
    chunk_steps: transitions per compiled call (`None`: a phase in one call).
    progress_callback: optional `callable(steps_done, total_steps)` called
      after every chunk (eager execution only).
    total_steps: the `total_steps` reported to `progress_callback`.
    replicas: optional `sharding.Replicas`: run every call on the replicas
      of a strategy, each on its block of chains (eager execution only).
    record_steps: steps, counted over all phases (0: the initial states), at
      which the chains' states are kept in `snapshots` (eager execution
      only; module docstring).
  """

  def __init__(self, jit_compile=True, chunk_steps=None,
               progress_callback=None, total_steps=None, replicas=None,
               record_steps=()):
    if chunk_steps is not None and int(chunk_steps) < 1:
      raise ValueError('`chunk_steps` must be positive.')
    self._eager = tf.executing_eagerly()
    if replicas is not None and not self._eager:
      raise ValueError('Sharded chains run eagerly.')
    self._record_steps = frozenset(int(step) for step in record_steps)
    if self._record_steps and not self._eager:
      raise ValueError('Snapshots along the chain are taken eagerly.')
    if any(step < 0 for step in self._record_steps):
      raise ValueError('`record_steps` must be non-negative, got '
                       f'{sorted(self._record_steps)}.')
    self.snapshots = {}
    self._jit_compile = jit_compile
    self._chunk_steps = None if chunk_steps is None else int(chunk_steps)
    self._progress_callback = progress_callback
    self._total_steps = total_steps
    self._replicas = replicas
    if replicas is None:
      self._devices = _OneDevice(self)
    else:
      self._devices = _Sharded(replicas, jit_compile)

  @property
  def eager(self):
    """Whether the engine runs eagerly (else it builds into a graph)."""
    return self._eager

  @property
  def record_steps(self):
    """The steps whose states are kept in `snapshots` (a frozenset)."""
    return self._record_steps

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

  def _chunks(self, num_steps, steps_before=0):
    """Step counts of the compiled calls of a phase of `num_steps` steps.

    Chunks of at most `chunk_steps`, cut at every recorded step inside the
    phase (the phase starts after `steps_before` steps).
    """
    static_steps = tf.get_static_value(num_steps)
    if not self._eager or static_steps is None:
      return [num_steps]
    num = int(static_steps)
    cuts = sorted(step - steps_before for step in self._record_steps
                  if 0 < step - steps_before < num) + [num]
    chunks, start = [], 0
    for end in cuts:
      length = end - start
      chunk = length if self._chunk_steps is None else min(self._chunk_steps,
                                                           length)
      chunks += [min(chunk, length - done) for done in range(0, length, chunk)]
      start = end
    return chunks

  def _record(self, step, state, results):
    """Keeps the merged states and energies of the chains at `step`."""
    if step in self._record_steps and step not in self.snapshots:
      state, results = self._devices.merge_rows((state, results))
      self.snapshots[step] = Snapshot(state, current_energy(results))

  def compile(self, fn):
    """`fn` as a `tf.function` when eager, else `fn` itself."""
    if not self._eager:
      return fn
    return tf.function(fn, jit_compile=self._jit_compile, autograph=False)

  def run(self, kernel_spec, kernel_args, state, seed, num_steps, *,
          steps_before=0, collection=None):
    """Bootstraps `kernel_spec`'s kernel at `state`, runs `num_steps`.

    Args:
      kernel_spec: what builds the kernel inside the compiled functions: an
        object with `build(kernel_args, shard) -> TransitionKernel` (`shard`
        is the replica's `sharding.ChainShard` under a strategy, else
        `None`) and `cross_chain`, whether the kernel's steps pool
        statistics over all chains (under a strategy each step is then one
        call); e.g. `chains.KernelSpec`.
      kernel_args: tuple of the `Tensor`s (or `None`s) the kernel is built
        from; they are passed to the compiled functions as arguments.
      state: initial state.
      seed: int32 `[2]` stateless seed of the phase.
      num_steps: int (or, in a graph, int32 scalar `Tensor`) transitions.
      steps_before: steps made by earlier phases (for the progress report).
      collection: optional `Collection` feeding weighted reservoirs.

    Returns:
      `PhaseRun`, of full-size tensors under a strategy too.
    """
    devices = self._devices
    cross_chain = kernel_spec.cross_chain
    results, initial_energy = devices.bootstrap(kernel_spec, state,
                                                kernel_args)
    reservoir = None
    if collection is not None:
      reservoir = empty_reservoir(state, initial_energy)
    if self._eager and steps_before == 0 and 0 in self._record_steps:
      self.snapshots.setdefault(0, Snapshot(state, initial_energy))
    state, reservoir = devices.distribute((state, reservoir))
    compiled = {}
    traces = []
    done = 0
    for chunk in self._chunks(num_steps, steps_before):
      for n in devices.calls(chunk, cross_chain):
        key = n if isinstance(n, int) else None
        if key not in compiled:
          compiled[key] = devices.compile_chunk(_ChunkFn(
              kernel_spec, n, collection, devices.unroll(cross_chain)))
        state, results, energies, accepts, k_accepts, reservoir = (
            compiled[key](state, results, kernel_args, seed,
                          tf.constant(done, tf.int32), reservoir))
        traces.append(devices.merge_trace(energies, accepts, k_accepts))
        if self._eager:
          done += n
      if self._eager:
        self._record(steps_before + done, state, results)
      if self._eager and self._progress_callback is not None:
        self._progress_callback(steps_before + done, self._total_steps)
    energies, accepts, k_accepts = (
        t[0] if len(t) == 1 else tf.concat(t, axis=0) for t in zip(*traces))
    state, results, reservoir = devices.merge_rows((state, results,
                                                    reservoir))
    return PhaseRun(state, results, initial_energy, energies, accepts,
                    k_accepts, reservoir)
