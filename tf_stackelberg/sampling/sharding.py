"""The chains of one sampling run, sharded over the replicas of a strategy.

With a `tf.distribute.Strategy` of `R > 1` replicas, `sample_latents` splits
its `N` chains into `R` contiguous blocks of rows, as even as they can be
(`shard_bounds`): replica `r` evaluates the generator and the discriminator
only on the latents of its block. That evaluation is the cost of a step;
the rest of a transition is a few element-wise operations per chain.

Every replica runs the sampler's kernels, unchanged, on states of the full
shape `[N, ...]`, whose rows outside its block are placeholders: its energy
function (`ChainShard.local_energy_fn`) evaluates the model on its own rows
and gives the other rows the energy 0 and a zero gradient. The kernels thus
draw their stateless noise at the full shape `[N, ...]` from the same seeds
as on one device, and each replica keeps the rows of its own chains: every
random number of chain `i` is the one of the one-device run, however the
chains are sharded, and the one-device code and its draws are left as they
were. The placeholder rows cost the element-wise work of the transition,
never a pass through `G` or `D`, and are dropped when the blocks are put
together (`Replicas.merge_rows`), at the end of every phase of a sampler.

Statistics over the chains take the chains of every replica:

* inside a step, by the replica context's `all_reduce`: the visit histogram
  of a Wang-Landau bias shared by all chains, and the acceptance
  probabilities behind its step-size rule (`ChainShard.all_reduce_sum`,
  `ChainShard.gather`). A strategy that synchronises through `merge_call`
  (`MirroredStrategy` on CPUs) allows no such sum inside a `tf.while_loop`,
  so the steps of a kernel that pools statistics (`cross_chain`) run one
  call each; the other kernels run whole chunks of steps per call;
* per chunk, the per-step acceptance and generator-move rates, which each
  replica reports for its own rows as a share of the mean over all chains
  (`ChainShard.partial_mean`) and which are summed across replicas
  afterwards (`Replicas.sum`);
* per phase, everything else (the Wang-Landau warm-up range, the desired bin
  probabilities, the importance resampling, the diagnostics), computed by
  the sampler from the merged, full-size outputs of the phase, as on one
  device.

XLA: logical CPU devices of one process do not let a compiled cluster read
the variables of another device, and a merge-call `all_reduce` cannot be
compiled; `Replicas.function` reports such a failure as `ShardedXlaError`,
and `sample_latents` then runs the whole sampling again uncompiled (from the
start, so that no run mixes the two random number algorithms).

The replicas must all be devices of this process (`in_one_process`): the
blocks are put together from the replicas' local results.
"""

import collections

import tensorflow as tf

__all__ = [
    'ChainShard',
    'Replicas',
    'ShardedXlaError',
    'in_one_process',
    'replicas_of',
    'shard_bounds',
]


class ShardedXlaError(RuntimeError):
  """A compiled call of sharded chains failed (e.g. XLA on logical CPUs)."""


def shard_bounds(num_chains, num_replicas):
  """`[(start, stop)]` row blocks of `num_chains` chains over the replicas.

  Contiguous blocks whose sizes differ by at most one, the larger first; a
  replica gets an empty block when there are fewer chains than replicas.
  """
  size, extra = divmod(int(num_chains), int(num_replicas))
  bounds, start = [], 0
  for replica in range(num_replicas):
    stop = start + size + (1 if replica < extra else 0)
    bounds.append((start, stop))
    start = stop
  return bounds


class ChainShard(
    collections.namedtuple('ChainShard', ['num_chains', 'start', 'stop'])):
  """The block of chains one replica evaluates, as seen inside the replica.

  Attributes:
    num_chains: Python int, the chains of all replicas.
    start: Python int, first row of the block.
    stop: Python int, end of the block (exclusive).
  """
  __slots__ = ()

  def is_local(self):
    """bool `[num_chains]`: which rows belong to this replica."""
    rows = tf.range(self.num_chains)
    return (rows >= self.start) & (rows < self.stop)

  def keep_local(self, values):
    """`values` (`[num_chains, ...]`) with the other replicas' rows zeroed."""
    values = tf.convert_to_tensor(values)
    mask = tf.reshape(self.is_local(), tf.concat(
        [[self.num_chains], tf.ones([tf.rank(values) - 1], tf.int32)], 0))
    return tf.where(mask, values, tf.zeros_like(values))

  def local_energy_fn(self, energy_fn):
    """`energy_fn(z, k)` evaluated on this replica's rows only.

    The other rows get the energy 0 and, through the slice, a zero
    gradient; `G` and `D` never see them.
    """
    start, stop, num_chains = self.start, self.stop, self.num_chains

    def energy(z, k):
      z = tf.convert_to_tensor(z)
      k = tf.broadcast_to(k, tf.shape(z)[:1])
      local = energy_fn(z[start:stop], k[start:stop])
      return tf.pad(local, [[start, num_chains - stop]])

    return energy

  def all_reduce_sum(self, value):
    """`value` summed over the replicas (the replica context's
    `all_reduce`; not inside a `tf.while_loop` or `tf.cond`)."""
    return tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, value)

  def gather(self, values):
    """The per-chain `values` `[num_chains, ...]` of every replica's rows.

    Each replica contributes its own rows and zeros elsewhere, so the sum
    over replicas is exact: the result is the tensor a one-device run holds.
    """
    return self.all_reduce_sum(self.keep_local(values))

  def partial_mean(self, values):
    """This replica's share of the mean of `values` `[num_chains]` over all
    chains; the shares of all replicas add up to the mean."""
    values = tf.convert_to_tensor(values)
    return (tf.reduce_sum(self.keep_local(values)) /
            tf.cast(self.num_chains, values.dtype))


def in_one_process(strategy):
  """Whether all replicas of `strategy` are devices of this process.

  The merged outputs of a phase are put together from the replicas' local
  results, so a multi-worker strategy cannot shard the chains.
  """
  if strategy is None or strategy.num_replicas_in_sync <= 1:
    return True
  return len(strategy.extended.worker_devices) == (
      strategy.num_replicas_in_sync)


def replicas_of(strategy, num_chains):
  """`Replicas` for a strategy of several replicas, else `None`.

  Args:
    strategy: a `tf.distribute.Strategy` or `None`.
    num_chains: Python int, the number of chains.

  Returns:
    `Replicas`, or `None` for no strategy or a single replica.

  Raises:
    ValueError: with several replicas outside eager execution (a sharded
      run is driven from Python, chunk by chunk), inside a replica context,
      or when some replicas are in other processes (see
      `in_one_process`).
  """
  if strategy is None or strategy.num_replicas_in_sync <= 1:
    return None
  if not in_one_process(strategy):
    raise ValueError(
        'Sharded sampling needs every replica in this process; the strategy '
        f'has {strategy.num_replicas_in_sync} replicas, '
        f'{len(strategy.extended.worker_devices)} of them here.')
  if not tf.executing_eagerly():
    raise ValueError('Sampling under a strategy of '
                     f'{strategy.num_replicas_in_sync} replicas runs eagerly; '
                     'it cannot be traced into a `tf.function`.')
  if tf.distribute.has_strategy() and (
      not tf.distribute.in_cross_replica_context()):
    raise ValueError('`sample_latents(strategy=...)` must be called outside '
                     '`strategy.run` (in a cross-replica context).')
  return Replicas(strategy, num_chains)


class Replicas(object):
  """Runs functions of the chains on every replica and merges their rows.

  Args:
    strategy: `tf.distribute.Strategy` of several replicas.
    num_chains: Python int, the number of chains.
  """

  def __init__(self, strategy, num_chains):
    self._strategy = strategy
    self._num_chains = int(num_chains)
    self._bounds = shard_bounds(self._num_chains,
                                strategy.num_replicas_in_sync)

  @property
  def strategy(self):
    return self._strategy

  @property
  def num_replicas(self):
    return len(self._bounds)

  @property
  def num_chains(self):
    return self._num_chains

  @property
  def bounds(self):
    """`[(start, stop)]` rows of each replica."""
    return list(self._bounds)

  def _shard(self):
    """The `ChainShard` of the replica being traced."""
    context = tf.distribute.get_replica_context()
    replica = tf.get_static_value(context.replica_id_in_sync_group)
    start, stop = self._bounds[int(replica)]
    return ChainShard(self._num_chains, start, stop)

  def function(self, fn, jit_compile=False):
    """`fn(shard, *args)` on every replica, as one compiled call.

    Args:
      fn: callable `(ChainShard, *args) -> outputs`.
      jit_compile: compile each replica's part with XLA.

    Returns:
      callable `(*args) -> outputs`, a nest of per-replica values. `args`
      may hold plain tensors (the same on every replica) and per-replica
      values returned by earlier calls.

    Raises (when called):
      ShardedXlaError: if a compiled call fails; the caller can run again
        uncompiled.
    """
    def replica_fn(*args):
      # Every output its own tensor, so that none comes back as the one
      # (not per-replica) input it passes through, which would change the
      # signature of the next call.
      return tf.nest.map_structure(
          lambda value: None if value is None else tf.identity(value),
          fn(self._shard(), *args))

    if jit_compile:
      replica_fn = tf.function(replica_fn, jit_compile=True, autograph=False)
    strategy = self._strategy
    call = tf.function(lambda *args: strategy.run(replica_fn, args),
                       autograph=False)
    if not jit_compile:
      return call

    def checked(*args):
      try:
        return call(*args)
      except Exception as e:  # pylint: disable=broad-except
        raise ShardedXlaError(type(e).__name__) from e

    return checked

  def replicate(self, values):
    """A nest of tensors as per-replica values, a copy on every replica.

    Handing a phase's first call the same kind of arguments as the calls
    after it (which get the per-replica outputs of the one before) spares
    a second trace of the function.
    """
    def replicate(value):
      if value is None:
        return None
      return self._strategy.experimental_distribute_values_from_function(
          lambda _: tf.identity(value))

    return tf.nest.map_structure(replicate, values)

  def _local(self, value):
    return self._strategy.experimental_local_results(value)

  def merge_rows(self, per_replica, axis=0):
    """The full tensors of per-replica tensors whose rows are chains.

    A tensor whose (static) dimension `axis` is the number of chains is
    put together from every replica's own rows; any other tensor (a shared
    bias, a counter, a seed) is the same on all replicas and is taken from
    the first.
    """
    def merge(value):
      if value is None:
        return None
      values = self._local(value)
      shape = values[0].shape
      if (len(values) == 1 or shape.rank is None or shape.rank <= axis or
          shape[axis] != self._num_chains):
        return values[0]
      blocks = []
      for (start, stop), part in zip(self._bounds, values):
        index = [slice(None)] * axis + [slice(start, stop)]
        blocks.append(part[tuple(index)])
      return tf.concat(blocks, axis=axis)

    return tf.nest.map_structure(merge, per_replica)

  def sum(self, per_replica):
    """Per-replica tensors summed over the replicas."""
    return tf.nest.map_structure(
        lambda value: tf.add_n(list(self._local(value))),
        per_replica)

  def map_rows(self, fn, tensors, jit_compile=False):
    """`fn(*tensors)` for a row-wise `fn`, each replica on its own rows.

    Args:
      fn: callable of tensors `[num_chains, ...]` returning tensors whose
        rows are the inputs' (e.g. energies, or the samples `G_k(z)`).
      tensors: tuple of tensors `[num_chains, ...]`.
      jit_compile: compile each replica's part with XLA.

    Returns:
      `fn`'s outputs on all rows.
    """
    def rows_fn(shard, *values):
      return fn(*(v[shard.start:shard.stop] for v in values))

    outputs = self.function(rows_fn, jit_compile)(*tensors)
    return tf.nest.map_structure(
        lambda value: tf.concat(list(self._local(value)), axis=0),
        outputs)
