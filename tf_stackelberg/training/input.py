"""Training batches for a strategy: each input pipeline reads its own share of every
global batch (docs/design.md section 12.2).

A `DataSource` makes the batch of step `s` as a pure function of `(seed, s)`. Under
a strategy with several replicas, `strategy.distribute_datasets_from_function` calls
`pipeline_batches` once per input pipeline (once per worker) with its
`tf.distribute.InputContext`; that pipeline cuts its rows out of each step's global
batch (`DataSource.batches(shard=...)`) and splits them into one batch per local
replica. Global replica `r` therefore receives rows `[r * b, (r + 1) * b)` of the
global batch, `b` being the per-replica batch: the replicas never see the same
example, and together they see exactly the batch a one-device run sees, whatever the
number of workers and devices. A resumed run starts the streams at its restored step,
so it continues exactly.
"""

import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError


def check_global_batch(global_batch, strategy):
  """Refuses a global batch that does not split evenly over the replicas."""
  replicas = strategy.num_replicas_in_sync
  if global_batch % replicas:
    raise ConfigError(f"--game.batch_size={global_batch} does not split evenly over "
                      f"{replicas} replicas; use a multiple of {replicas}")


def pipeline_batches(data, global_batch, seed, start_step, num_steps, context):
  """The dataset of input pipeline `context.input_pipeline_id`: for every step, one
  per-replica batch for each of the pipeline's replicas, in replica order."""
  per_replica = context.get_per_replica_batch_size(global_batch)
  shard = (context.input_pipeline_id, context.num_input_pipelines)
  rows = global_batch // context.num_input_pipelines
  local_replicas = rows // per_replica
  share = data.batches(global_batch, seed, start_step, num_steps, shard=shard)
  if local_replicas == 1:
    return share

  def split(batch):
    # [rows, ...] -> [local_replicas, per_replica, ...]: consecutive elements of the
    # pipeline go to consecutive local replicas.
    tail = batch.shape[1:]
    shape = ([local_replicas, per_replica] + tail.as_list() if tail.is_fully_defined()
             else tf.concat([[local_replicas, per_replica], tf.shape(batch)[1:]], 0))
    return tf.data.Dataset.from_tensor_slices(tf.reshape(batch, shape))
  return share.flat_map(split)


def training_batches(strategy, data, global_batch, seed, start_step=0, num_steps=None):
  """The batches `model.fit` reads under `strategy`: the global batches themselves
  with one replica, else a distributed dataset of per-replica shares."""
  check_global_batch(global_batch, strategy)
  if strategy.num_replicas_in_sync == 1:
    return data.batches(global_batch, seed, start_step, num_steps)
  options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
  return strategy.distribute_datasets_from_function(
      lambda context: pipeline_batches(data, global_batch, seed, start_step,
                                       num_steps, context), options)
