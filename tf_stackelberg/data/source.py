"""What a dataset gives the rest of the package."""

import abc
from typing import Optional, Tuple

import tensorflow as tf


class DataSource(abc.ABC):
  """A dataset a run trains on, with what evaluation and sampling need of it.

  Every batch is a pure function of (seed, step): a run resumed at step s reads exactly
  the batches an uninterrupted run would have read, with no iterator state to save.
  """

  #: Shape of one example, e.g. (2,) for points in the plane.
  element_shape: Tuple[int, ...] = ()
  #: Names of the evaluators that suit this data (used when --eval.evaluators is empty).
  evaluators: Tuple[str, ...] = ()

  @abc.abstractmethod
  def batches(self, batch_size: int, seed: int, start_step: int = 0,
              num_steps: Optional[int] = None,
              shard: Optional[Tuple[int, int]] = None) -> tf.data.Dataset:
    """Batches `[batch_size, *element_shape]`, one per step from `start_step` on.

    With `shard=(index, count)` each element is only rows
    `[index * batch_size / count, (index + 1) * batch_size / count)` of the global
    batch of that step (`shard_rows`): input pipeline `index` of `count` reads its
    own share, and the shares of all pipelines make up exactly the one-pipeline
    batch.
    """

  def check_batch_size(self, batch_size: int):
    """Raises `ConfigError` if a training batch of `batch_size` cannot be drawn (a
    fixed training set smaller than one batch); called before any training work."""

  @abc.abstractmethod
  def held_out(self, num_examples: int, seed) -> tf.Tensor:
    """`num_examples` real examples outside the training stream (stateless `seed`
    `[2]`), e.g. for calibrating a discriminator or drawing plots."""


def check_shard(batch_size, shard):
  """Validates `shard=(index, count)` for a global batch of `batch_size`."""
  if shard is None:
    return
  index, count = shard
  if count < 1 or not 0 <= index < count:
    raise ValueError(f"shard {shard} is not (index, count) with 0 <= index < count")
  if batch_size % count:
    raise ValueError(f"a batch of {batch_size} does not split into {count} equal "
                     "input-pipeline shares")


def shard_rows(batch, batch_size, shard):
  """Rows of the global `batch` (`batch_size` rows) that `shard=(index, count)` reads;
  the whole batch for `shard=None`."""
  if shard is None:
    return batch
  index, count = shard
  rows = batch_size // count
  return batch[index * rows:(index + 1) * rows]
