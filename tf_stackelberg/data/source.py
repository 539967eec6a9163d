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
              num_steps: Optional[int] = None) -> tf.data.Dataset:
    """Batches `[batch_size, *element_shape]`, one per step from `start_step` on."""

  @abc.abstractmethod
  def held_out(self, num_examples: int, seed) -> tf.Tensor:
    """`num_examples` real examples outside the training stream (stateless `seed`
    `[2]`), e.g. for calibrating a discriminator or drawing plots."""
