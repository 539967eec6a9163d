"""`classifier`: classifier score, FID, KID (with bootstrap intervals), precision,
recall, density, coverage, label coverage, label KL and the per-generator label table
of model samples, with the data set's own classifier (docs/design.md sections 9.1,
9.3 and 14.2).

`FeatureEvaluator` is generic over a `FeatureNetwork` (class scores and features of
one forward pass): the `inception` evaluator is the same class over InceptionV3. Model
samples are drawn and passed through the network in one compiled call per batch, and
only the scores, features and generator indices come back to the host, where the
plain functions of `tf_stackelberg.metrics.image_metrics` finish. The features of the
real reference images are computed once per evaluator and kept.
"""

import shutil
import textwrap
from typing import Callable, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation import classifiers
from tf_stackelberg.evaluation.evaluator import (Evaluator, batch_seeds,
                                                require_samples)
from tf_stackelberg.evaluation.networks import FeatureNetwork
from tf_stackelberg.evaluation.registry import EVALUATORS
from tf_stackelberg.metrics import image_metrics, manifold_metrics

# FID's covariances and KID's unbiased MMD need two rows of each set at least.
MIN_SAMPLES = 2
MIN_SAMPLES_REASON = "FID and KID need at least 2 samples and 2 real images"
# Samples per split of the classifier score, at least (at most SCORE_SPLITS splits).
_MIN_SPLIT = 100
# KID: random subsets and their size (Binkowski et al. use 100 subsets of 1000).
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
# Precision, recall, density and coverage: samples and real images they compare, at
# most (a fixed random subset of each; None: all). Their cost grows with its square:
# at 3,000 a tenth of 10,000's (docs/design.md section 14.2).
MANIFOLD_SAMPLES = 3000
# The manifold metrics' result names, in order.
MANIFOLD_NAMES = ("precision", "recall", "density", "coverage")
# Seeds of the manifold subsets and of the bootstrap resamples.
_SUBSET_SEED = 0
_BOOTSTRAP_SEED = 0
# A dominant class or a class listed for a generator: at least this share of its
# samples.
_SHOWN_SHARE = 0.05
# Classes whose counts the per-generator table shows as columns, at most.
_MAX_COLUMNS = 10


def score_splits(num_samples: int) -> int:
  """Splits of the classifier score: up to 10, each of at least 100 samples."""
  return max(1, min(classifiers.SCORE_SPLITS, num_samples // _MIN_SPLIT))


def clip_images(images):
  """Samples as they are shown: in [-1, 1] (what `to_uint8` writes)."""
  return tf.clip_by_value(tf.cast(images, tf.float32), -1.0, 1.0)


class FeatureEvaluator(Evaluator):
  """Feature and label metrics of `num_samples` model samples against real images.

  Args:
    network: the `FeatureNetwork`.
    real_images: real images `[M, H, W, C]` in `[-1, 1]`, or a function returning
      them (called at the first evaluation): the reference of FID and KID.
    num_generators: K.
    num_samples: model samples per evaluation.
    name: the registry name ('classifier', 'inception').
    score_name: the name of the classifier score ('classifier_score',
      'inception_score').
    prefix: prefix of 'fid', 'kid' ('' or 'inception_').
    class_names: the data set's classes; given, the evaluator reports the predicted
      label histogram, coverage, KL to uniform and the `[K, C]` per-generator table
      (the network's classes must be the data set's).
    batch_size: samples per compiled call (default: the network's).
    kid_subsets, kid_subset_size: KID's subsets.
    manifold_samples: samples and real images of precision, recall, density and
      coverage, at most (0 or None: all).
    bootstrap: resamples of the samples' features behind the intervals of FID and
      KID (0: none).
    bootstrap_real: also resample the real features (the reference's own noise,
      common to every model compared with it, is then in the interval).
  """

  def __init__(self, network: FeatureNetwork,
               real_images: Union[np.ndarray, Callable[[], np.ndarray]],
               num_generators: int, num_samples: int = 10000,
               name: str = "classifier", score_name: str = "classifier_score",
               prefix: str = "", class_names: Sequence[str] = (),
               batch_size: Optional[int] = None, kid_subsets: int = KID_SUBSETS,
               kid_subset_size: int = KID_SUBSET_SIZE,
               manifold_samples: Optional[int] = MANIFOLD_SAMPLES,
               bootstrap: int = image_metrics.BOOTSTRAP_RESAMPLES,
               bootstrap_real: bool = False):
    self.network = network
    self.name = name
    self.score_name = score_name
    self.prefix = prefix
    self.class_names = tuple(class_names)
    self.with_labels = bool(self.class_names)
    if self.with_labels and network.num_classes != len(self.class_names):
      raise ConfigError(f"{network.name} has {network.num_classes} classes, the data "
                        f"set {len(self.class_names)}")
    self.num_generators = int(num_generators)
    self.num_samples = int(num_samples)
    if self.num_samples < MIN_SAMPLES:
      raise ConfigError(f"the '{name}' evaluator needs at least {MIN_SAMPLES} samples "
                        f"({MIN_SAMPLES_REASON}), got num_samples={self.num_samples}")
    self.batch_size = int(batch_size or network.batch_size)
    self.kid_subsets = int(kid_subsets)
    self.kid_subset_size = int(kid_subset_size)
    self.manifold_samples = int(manifold_samples or 0)
    self.bootstrap = int(bootstrap)
    if self.bootstrap == 1 or self.bootstrap < 0:
      raise ConfigError(f"the '{name}' evaluator's bootstrap needs 0 or at least 2 "
                        f"resamples, got {self.bootstrap}")
    self.bootstrap_real = bool(bootstrap_real)
    names = ((score_name,) if network.has_scores else ()) + (prefix + "fid",
                                                            prefix + "kid")
    if self.with_labels:
      names += ("label_coverage", "label_kl")
    names += tuple(prefix + n for n in MANIFOLD_NAMES)
    if self.bootstrap:
      names += tuple(prefix + n for n in ("fid_ci_low", "fid_ci_high", "kid_ci_low",
                                          "kid_ci_high"))
    self.scalar_names = names
    self._real_images = real_images
    self._real = None  # (features, mean, covariance), made on first use
    self._manifold_real = None  # (real features, their k-NN radii), made on first use
    self._call = tf.function(lambda x: network(clip_images(x)), autograph=False)
    self._draws = {}  # (sample_fn, n) -> compiled draw + network

  # ------------------------------------------------------------ network outputs
  def _compiled_draw(self, sample_fn, n):
    """One compiled function: draw `n` samples, pass them through the network."""
    key = (sample_fn, n)
    if key not in self._draws:
      def draw(seed):
        x, k = sample_fn(n, seed)
        scores, features = self.network(clip_images(x))
        return scores, features, k
      self._draws[key] = tf.function(draw, autograph=False)
    return self._draws[key]

  def _outputs_of(self, images):
    """(scores or None, features) of images, batch by batch, as NumPy."""
    images = np.asarray(images)
    parts = [self._call(images[i:i + self.batch_size])
             for i in range(0, len(images), self.batch_size)]
    return _concatenate(parts)

  def real_statistics(self):
    """(features, mean, covariance) of the real reference images (computed once)."""
    if self._real is None:
      images = self._real_images() if callable(self._real_images) else self._real_images
      features = self._outputs_of(images)[1]
      self._real = (features,) + image_metrics.feature_statistics(features)
      self._real_images = None  # the features are all that is needed
    return self._real

  def _manifold_reference(self):
    """(real features, their squared k-NN radii `[M, 2]`) of the manifold metrics:
    a fixed subset of the real features (computed once); None when too few."""
    if self._manifold_real is None:
      real = _subset(self.real_statistics()[0], self.manifold_samples)
      needed = max(manifold_metrics.PRECISION_K, manifold_metrics.DENSITY_K)
      radii = (manifold_metrics.knn_radii(
          real, (manifold_metrics.PRECISION_K, manifold_metrics.DENSITY_K),
          squared=True) if len(real) > needed else None)
      self._manifold_real = (real, radii)
    return self._manifold_real

  # ------------------------------------------------------------ results
  def _results(self, scores, features, k):
    real_features, real_mu, real_sigma = self.real_statistics()
    n = len(features)
    result = {"num_samples": n, "num_real": len(real_features)}
    if scores is not None:
      splits = score_splits(n)
      mean, std = image_metrics.classifier_score_splits(
          scores, splits, from_logits=self.network.from_logits)
      result.update({self.score_name: mean, f"{self.score_name}_std": std,
                     "score_splits": splits})
    mu, sigma = image_metrics.feature_statistics(features)
    result[self.prefix + "fid"] = image_metrics.frechet_distance(mu, sigma, real_mu,
                                                                 real_sigma)
    if self.bootstrap:
      kid, kid_std, kids = image_metrics.kid_bootstrap(
          features, real_features, self.kid_subsets, self.kid_subset_size,
          num_resamples=self.bootstrap, resample_seed=_BOOTSTRAP_SEED,
          resample_b=self.bootstrap_real)
    else:
      kid, kid_std = image_metrics.kid(features, real_features, self.kid_subsets,
                                       self.kid_subset_size)
    result.update({self.prefix + "kid": kid, self.prefix + "kid_std": kid_std})
    if self.bootstrap:
      fids = image_metrics.fid_bootstrap(
          features, real_features, self.bootstrap, seed=_BOOTSTRAP_SEED,
          resample_b=self.bootstrap_real, statistics_b=(real_mu, real_sigma))
      result.update(_interval(self.prefix + "fid", result[self.prefix + "fid"], fids,
                              floor=0.0))
      result.update(_interval(self.prefix + "kid", kid, kids))
      result["bootstrap"] = {"resamples": self.bootstrap, "level": 0.95,
                             "real_resampled": self.bootstrap_real}
    result.update(self._manifold_results(features))
    if self.with_labels:
      num_classes = len(self.class_names)
      labels = image_metrics.predicted_labels(scores)
      histogram = image_metrics.label_histogram(labels, num_classes)
      table = image_metrics.per_generator_label_histogram(
          labels, k, self.num_generators, num_classes)
      result.update({
          "label_coverage": image_metrics.label_coverage(histogram),
          "num_classes": num_classes,
          "label_kl": image_metrics.kl_to_uniform(histogram),
          "class_names": list(self.class_names),
          "label_histogram": [int(c) for c in histogram],
          "per_generator_labels": [[int(c) for c in row] for row in table]})
    result["network"] = {"name": self.network.name, **self.network.info}
    yield from result.items()

  def _manifold_results(self, features):
    """Precision, recall, density and coverage of a fixed subset of the samples'
    features against the real subset (None each when either is too small)."""
    real, radii = self._manifold_reference()
    fake = _subset(features, self.manifold_samples)
    if radii is None or len(fake) <= manifold_metrics.PRECISION_K:
      values = dict.fromkeys(MANIFOLD_NAMES)
    else:
      values = manifold_metrics.manifold_metrics(real, fake, real_radii=radii)
    out = {self.prefix + name: values[name] for name in MANIFOLD_NAMES}
    out[self.prefix + "manifold"] = {
        "num_samples": len(fake), "num_real": len(real),
        "precision_k": manifold_metrics.PRECISION_K,
        "density_k": manifold_metrics.DENSITY_K}
    return out

  def evaluate(self, sample_fn, seed, step=0):
    strategy = self.strategy
    if strategy is not None and strategy.num_replicas_in_sync > 1:
      parts = self._replica_parts(sample_fn, seed, strategy)
    else:
      parts = [self._compiled_draw(sample_fn, n)(s)
               for n, s in batch_seeds(seed, self.num_samples, self.batch_size)]
    scores, features = _concatenate([p[:2] for p in parts])
    k = np.concatenate([np.asarray(p[2]) for p in parts])
    return self._results(scores, features, k)

  def _replica_parts(self, sample_fn, seed, strategy):
    """The batches of `evaluate`, drawn and passed through the network on the
    replicas, `R` batches at a time (replica `r` takes batch `r` of each group), and
    gathered back in batch order (docs/design.md section 12.3).

    Every replica draws a full batch and a short last batch keeps its first rows:
    stateless draws fill their output in order, so those are the rows a one-device
    evaluation draws for it.
    """
    replicas, size = strategy.num_replicas_in_sync, self.batch_size
    draw = self._compiled_draw(sample_fn, size)
    batches = list(batch_seeds(seed, self.num_samples, size))
    parts = []
    for start in range(0, len(batches), replicas):
      group = batches[start:start + replicas]
      seeds = [s for _, s in group] + [group[-1][1]] * (replicas - len(group))
      values = strategy.experimental_distribute_values_from_function(
          lambda context, seeds=seeds: seeds[context.replica_id_in_sync_group])
      outputs = strategy.run(draw, args=(values,))
      gathered = [None if o is None else _all_rows(strategy, o) for o in outputs]
      for r, (n, _) in enumerate(group):
        parts.append(tuple(None if g is None else g[r * size:r * size + n]
                           for g in gathered))
    return parts

  def evaluate_samples(self, x, k, step=0):
    scores, features = self._outputs_of(x)
    return self._results(scores, features, np.asarray(k))

  # ------------------------------------------------------------ reports
  def format(self, results):
    info = results["network"]
    about = info["name"]
    if "test_accuracy" in info:
      about += f", test accuracy {100 * info['test_accuracy']:.2f}%"
    if "description" in info:
      about += f", trained on {info['description']}"
    fields = []
    if self.score_name in results:
      fields.append(f"{self.score_name.replace('_', ' ')}: "
                    f"{results[self.score_name]:.3f} +- "
                    f"{results[self.score_name + '_std']:.3f}")
    fid, kid = self.prefix + "fid", self.prefix + "kid"
    fields += [f"FID: {results[fid]:.3f}{_interval_text(results, fid, '.3f')}",
               f"KID: {results[kid]:.5f} +- {results[kid + '_std']:.5f}"
               f"{_interval_text(results, kid, '.5f')}"]
    width = _terminal_width()
    lines = [f"{self.name}: {results['num_samples']} samples vs "
             f"{results['num_real']} real test images",
             *textwrap.wrap(f"network: {about}", width, subsequent_indent="  "),
             *textwrap.wrap("  ".join(fields), width)]
    lines += textwrap.wrap(self._manifold_text(results), width)
    if self.with_labels:
      lines += _label_lines(results, width)
    return "\n".join(lines)

  def _manifold_text(self, results):
    """The manifold metrics' line of `format`."""
    about = results[self.prefix + "manifold"]
    sizes = f"{about['num_samples']} samples vs {about['num_real']} real"
    if results[self.prefix + "precision"] is None:
      return f"precision, recall, density, coverage: too few ({sizes})"
    values = "  ".join(f"{name} {results[self.prefix + name]:.3f}"
                       for name in MANIFOLD_NAMES)
    return (f"{values} (k = {about['precision_k']} and {about['density_k']}, "
            f"{sizes})")

  def summary_fields(self, results):
    fields = []
    if self.with_labels:
      fields += [f"classes {results['label_coverage']}/{results['num_classes']}",
                 f"KL {results['label_kl']:.3f}"]
    if self.score_name in results:
      short = "score" if self.score_name == "classifier_score" else "IS"
      fields.append(f"{short} {results[self.score_name]:.2f}")
    fields.append(f"{'FID' if not self.prefix else 'iFID'} "
                  f"{results[self.prefix + 'fid']:.2f}")
    if results.get(self.prefix + "precision") is not None:
      fields.append(f"P/R {results[self.prefix + 'precision']:.2f}/"
                    f"{results[self.prefix + 'recall']:.2f}")
    return fields


def _subset(features, size):
  """A fixed random subset of `size` rows of `features` (all of them when `size` is 0
  or not smaller), in their order: the same rows for the same number of rows."""
  if not size or len(features) <= size:
    return features
  rows = np.random.default_rng(_SUBSET_SEED).choice(len(features), size,
                                                    replace=False)
  return features[np.sort(rows)]


def _interval(name, estimate, resampled, floor=None):
  """`{name}_se`, `{name}_ci_low`, `{name}_ci_high`: the 95% normal bootstrap
  interval of `estimate` from its `resampled` values."""
  interval = image_metrics.bootstrap_interval(estimate, resampled, 0.95, floor)
  return {f"{name}_se": interval["se"], f"{name}_ci_low": interval["low"],
          f"{name}_ci_high": interval["high"]}


def _interval_text(results, name, spec):
  """' (95% CI LOW to HIGH)' of a result with an interval, else ''."""
  low, high = results.get(name + "_ci_low"), results.get(name + "_ci_high")
  if low is None or high is None:
    return ""
  return f" (95% CI {low:{spec}} to {high:{spec}})"


def _all_rows(strategy, value):
  """Every replica's rows of a per-replica `value`, in replica order, as NumPy: the
  local results on one host, an all-gather across the workers of a cluster."""
  in_cluster = getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)()
  if in_cluster:
    return strategy.gather(value, axis=0).numpy()
  return np.concatenate([np.asarray(v) for v in
                         strategy.experimental_local_results(value)])


def _concatenate(parts):
  """NumPy (scores or None, features) from per-batch pairs (tensors or arrays)."""
  scores = (None if parts[0][0] is None
            else np.concatenate([np.asarray(p[0]) for p in parts]))
  return scores, np.concatenate([np.asarray(p[1]) for p in parts])


def _terminal_width():
  """The console's width (80 when the output is no terminal; `$COLUMNS` wins)."""
  return shutil.get_terminal_size((80, 24)).columns


def _label_lines(results, width=80):
  """The label lines of `format`: coverage, histogram, per-generator table, within
  `width` columns."""
  names = results["class_names"]
  histogram = results["label_histogram"]
  lines = [f"classes: {results['label_coverage']}/{results['num_classes']}  label KL "
           f"to uniform: {results['label_kl']:.4f}",
           *textwrap.wrap("samples per predicted class: " + "  ".join(
               f"{name}:{count}" for name, count in zip(names, histogram)), width,
                          subsequent_indent="  ")]
  table = np.asarray(results["per_generator_labels"])
  if len(table) < 2:
    return lines
  return lines + _generator_table(table, names, width)


def _generator_table(table, names, width):
  """Which generator makes which class, as wide as `width` allows: with the dominant
  class and a column per class; else a column per class alone; else the classes
  with at least 5% of each generator's samples."""
  layouts = []
  if len(names) <= _MAX_COLUMNS:
    layouts += [(True, True), (False, True)]
  layouts.append((True, False))
  for dominant_column, class_columns in layouts:
    rows = _table_rows(table, names, dominant_column, class_columns)
    if max(map(len, rows)) <= width or (dominant_column and not class_columns):
      return [row[:width] for row in rows]
  return []  # not reached: the last layout is always taken


def _table_rows(table, names, dominant_column, class_columns):
  """The header, its rule and one row per generator of one layout."""
  header = f"{'gen':>3}  {'samples':>7}"
  if dominant_column:
    header += f"  {'dominant':>10}  {'share':>6}"
  header += ("".join(f" {name[:5]:>5}" for name in names) if class_columns
             else "  classes with >= 5%")
  rows = [header, "-" * len(header)]
  for g, row in enumerate(table):
    total = int(row.sum())
    line = f"{g:>3}  {total:>7}"
    if dominant_column:
      dominant = int(np.argmax(row)) if total else None
      line += (f"  {'-' if dominant is None else names[dominant][:10]:>10}  "
               f"{100 * row[dominant] / total if total else 0.0:>5.1f}%")
    if class_columns:
      line += "".join(f" {int(c):>5}" for c in row)
    else:
      shown = [names[c] for c in np.flatnonzero(row >= _SHOWN_SHARE * max(total, 1))]
      line += "  " + (",".join(shown) or "-")
    rows.append(line)
  return rows


def image_data(config, data_source, evaluator):
  """`data_source` if it is labelled image data, else `ConfigError`."""
  if not hasattr(data_source, "num_classes") or len(data_source.element_shape) != 3:
    raise ConfigError(f"--eval.evaluators: '{evaluator}' needs an image dataset, not "
                      f"--data.dataset={config.data.dataset}")
  return data_source


def real_images_of(data_source, num_samples):
  """A function returning the real reference images: `num_samples` test images (all
  of them if there are fewer), the same subset every time."""
  count = min(int(num_samples), data_source.num_examples("test"))
  return lambda: data_source.examples("test", count)[0]


def check_input_shape(network, element_shape, flag_hint):
  """`ConfigError` when the network's input does not take the data's images."""
  expected = tuple(network.model.inputs[0].shape[1:])
  if expected != tuple(element_shape):
    raise ConfigError(f"{network.name} takes images of shape {expected}, the data has "
                      f"{tuple(element_shape)} ({flag_hint})")


@EVALUATORS.register("classifier")
def classifier(config, data_source, num_generators):
  """Needs labelled image data and its cached classifier (tools/train_classifier.py)."""
  data = image_data(config, data_source, "classifier")
  if data.name in classifiers.CLASSIFIER_OF:
    raise ConfigError(f"--eval.evaluators: 'classifier' does not evaluate "
                      f"{data.name}, whose images hold several "
                      f"{classifiers.CLASSIFIER_OF[data.name]} images; use "
                      f"'{data.name}'")
  if data.num_classes < 2:
    raise ConfigError(f"--eval.evaluators: 'classifier' needs class labels, and "
                      f"{data.name} has none")
  require_samples(config, "classifier", MIN_SAMPLES, MIN_SAMPLES_REASON)
  network = classifiers.classifier_for(data, config)
  check_input_shape(network, data.element_shape, "--eval.classifier_dir")
  return FeatureEvaluator(network, real_images_of(data, config.eval.num_samples),
                          num_generators, config.eval.num_samples,
                          class_names=data.class_names,
                          **feature_settings(config))


def feature_settings(config):
  """The `FeatureEvaluator` settings that flags set: the manifold metrics' subset and
  the bootstrap resamples."""
  return {"manifold_samples": config.eval.manifold_samples,
          "bootstrap": config.eval.bootstrap}
