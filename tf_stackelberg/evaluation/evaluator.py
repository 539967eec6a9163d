"""The evaluator interface and the helpers that run evaluators on a model.

An evaluator is given a sampling function `sample_fn(n, seed) -> (x [n, ...], k [n])`
(a model's `sample`, or the output of a latent sampler) and yields `(name, value)`
pairs. Values are numbers (logged to TensorBoard and the evaluation history when the
name is in `scalar_names`), images (uint8 `[H, W, 3]`, names in `image_names`:
TensorBoard images and PNG files) or JSON-able structures (kept in `metrics.json`).
"""

import abc
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_stackelberg import visualization
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation.registry import EVALUATORS

# Samples drawn per compiled call.
DEFAULT_BATCH = 10000


class Evaluator(abc.ABC):
  """One metric family.

  Attributes:
    name: the registry name.
    scalar_names: names of the scalar results logged at every evaluation.
    image_names: names of the results that are images.
  """

  name: str = ""
  scalar_names: Tuple[str, ...] = ()
  image_names: Tuple[str, ...] = ()
  #: The `tf.distribute.Strategy` whose replicas share the costly part of an
  #: evaluation, for evaluators that use it (`FeatureEvaluator`); None: one device.
  strategy = None

  @abc.abstractmethod
  def evaluate(self, sample_fn, seed, step: int = 0) -> Iterator[Tuple[str, Any]]:
    """Draws from `sample_fn` with the stateless `seed` `[2]` and yields results."""

  @abc.abstractmethod
  def evaluate_samples(self, x, k, step: int = 0) -> Iterator[Tuple[str, Any]]:
    """The same results for given samples `x [N, ...]` and generator indices `k`."""

  def format(self, results: Dict[str, Any]) -> str:  # pylint: disable=unused-argument
    """A human-readable block of this evaluator's results ('' for none)."""
    return ""

  def summary_fields(self, results: Dict[str, Any]) -> List[str]:  # pylint: disable=unused-argument
    """Short fields ('modes 8/8') of this evaluator's results for the console line,
    most important first (the console leaves out what does not fit)."""
    return []

  def summary(self, results: Dict[str, Any]) -> str:
    """A short one-line summary of this evaluator's results ('' for none)."""
    return "  ".join(self.summary_fields(results))


def batch_seeds(seed, num_samples, batch_size):
  """Yields (size, seed) of each batch, lazily (a large evaluation never holds more
  than one batch): the first batch uses `seed` itself, the others fold in their index,
  so an evaluation that fits in one batch draws `sample_fn(n, seed)`."""
  seed = tf.cast(seed, tf.int64)
  for i, start in enumerate(range(0, num_samples, batch_size)):
    batch_seed = seed if i == 0 else tf.cast(
        tf.random.experimental.stateless_fold_in(seed, i), tf.int64)
    yield min(batch_size, num_samples - start), batch_seed


def sample_counts(config):
  """`(flag, count)` of every number of samples an evaluator of this invocation is
  given: the model samples of an evaluation and the real reference set of FID and
  KID (`--eval.num_samples`) and, in `--mode=sample`, the sampler's output
  (`--sampling.num_samples`)."""
  counts = [("--eval.num_samples", config.eval.num_samples)]
  if config.mode == "sample":
    counts.append(("--sampling.num_samples", config.sampling.num_samples))
  return counts


def require_samples(config, evaluator, minimum, reason):
  """`ConfigError` naming the flag when an evaluator that needs at least `minimum`
  samples (`reason` says why) would be given fewer.

  Called by an evaluator's builder before anything costly (loading or building its
  network), so that the setting is refused before training or sampling starts
  rather than when the first evaluation fails.
  """
  for flag, count in sample_counts(config):
    if count < minimum:
      raise ConfigError(
          f"{flag}={count} is too few for the '{evaluator}' evaluator ({reason}): "
          f"set {flag} to at least {minimum}, or leave '{evaluator}' out of "
          "--eval.evaluators")


def build_evaluators(config, data_source, num_generators,
                     strategy=None) -> List[Evaluator]:
  """The evaluators `--eval.evaluators` names (default: the dataset's own), sharing
  their work over the replicas of `strategy` where they can."""
  names = config.eval.evaluators or data_source.evaluators
  evaluators = [EVALUATORS.get(name)(config, data_source, num_generators)
                for name in names]
  for evaluator in evaluators:
    evaluator.strategy = strategy
  return evaluators


def run_evaluators(evaluators: Sequence[Evaluator], sample_fn=None, seed=None,
                   step: int = 0, samples: Optional[Tuple[np.ndarray, np.ndarray]] = None
                   ) -> Dict[str, Dict[str, Any]]:
  """Runs every evaluator; returns {evaluator name: {result name: value}}.

  Either `sample_fn` and `seed`, or `samples=(x, k)`.
  """
  out = {}
  for evaluator in evaluators:
    pairs = (evaluator.evaluate_samples(*samples, step=step) if samples is not None
             else evaluator.evaluate(sample_fn, seed, step=step))
    out[evaluator.name] = dict(pairs)
  return out


def scalars(evaluators, results) -> Dict[str, float]:
  """The scalar results of every evaluator, as `{name: value}` (names unique)."""
  return {name: float(results[e.name][name]) for e in evaluators
          for name in e.scalar_names if results[e.name].get(name) is not None}


def images(evaluators, results) -> Dict[str, np.ndarray]:
  """The image results of every evaluator, as `{name: uint8 [H, W, 3]}`."""
  return {name: results[e.name][name] for e in evaluators for name in e.image_names}


def save_images(evaluators, results, directory, suffix=""):
  """Writes each image result as `directory/NAME{suffix}.png`."""
  for name, image in images(evaluators, results).items():
    visualization.save_png(image, os.path.join(directory, f"{name}{suffix}.png"))


def without_images(evaluators, results) -> Dict[str, Dict[str, Any]]:
  """`results` without the images (what goes into the JSON files)."""
  return {e.name: {k: v for k, v in results[e.name].items() if k not in e.image_names}
          for e in evaluators}


def format_results(evaluators, results) -> str:
  """Every evaluator's human-readable block, one after the other."""
  return "\n".join(text for e in evaluators if (text := e.format(results[e.name])))


def summary_fields(evaluators, results) -> List[str]:
  """Every evaluator's summary fields, in order."""
  return [field for e in evaluators for field in e.summary_fields(results[e.name])]


def summary_line(evaluators, results) -> str:
  """Every evaluator's one-line summary, joined."""
  return "  ".join(summary_fields(evaluators, results))
