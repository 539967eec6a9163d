"""Tests for the image evaluators (tf_stackelberg.evaluation.evaluators.classifier,
stacked_mnist, inception) and the evaluation classifiers: real MNIST test images as
"samples" with a fixed generator assignment, a classifier trained once per test run by
tools/train_classifier.py on a few thousand examples, the error that names the command
for a missing classifier, Stacked-MNIST mode counting on constructed digit triples,
and InceptionV3 from randomly initialised weights in a temporary file."""

import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.evaluation import classifiers
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.evaluation import inception
from tf_stackelberg.evaluation.evaluators import classifier as classifier_lib
from tf_stackelberg.evaluation.evaluators.classifier import FeatureEvaluator
from tf_stackelberg.evaluation.evaluators.stacked_mnist import StackedMnistEvaluator
from tf_stackelberg.evaluation.networks import FeatureNetwork
from tf_stackelberg.metrics import image_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = 3


def mnist_config(**values):
  return Config().replace(**{"data.dataset": "mnist", **values})


@pytest.fixture(scope="session")
def network(mnist_classifier_dir):  # pylint: disable=redefined-outer-name
  return classifiers.load_classifier("mnist", mnist_classifier_dir)


def label_generators(labels):
  """The fixed generator assignment of the tests: generator `label % K`."""
  return (np.asarray(labels) % K).astype(np.int32)


# ------------------------------------------------------------------ the classifier
def test_the_tool_writes_the_classifier_and_its_report(mnist_classifier_dir, network):  # pylint: disable=redefined-outer-name
  path = os.path.join(mnist_classifier_dir, "mnist.keras")
  assert os.path.isfile(path)
  report = files.read_json(os.path.join(mnist_classifier_dir, "mnist.json"))
  assert report["dataset"] == "mnist"
  assert report["train_examples"] == 4000
  assert report["test_examples"] == 10000
  assert 0.8 < report["test_accuracy"] <= 1.0
  assert 1.0 < report["real_classifier_score"] <= 10.0
  assert report["score_splits"] == 10
  # The loaded network: logits and the 128 penultimate features, the same pair
  # either way it is called.
  assert network.num_classes == 10 and network.from_logits
  logits_fn, features_fn = network
  x = np.zeros((2, 28, 28, 1), np.float32)
  scores, features = network(x)
  assert scores.shape == (2, 10) and features.shape == (2, 128)
  np.testing.assert_allclose(logits_fn(x), scores, rtol=1e-6)
  np.testing.assert_allclose(features_fn(x), features, rtol=1e-6)
  assert network.info["test_accuracy"] == report["test_accuracy"]


def test_a_missing_classifier_names_the_command_that_builds_it(tmp_path, monkeypatch):
  # `load_classifier` alone builds nothing (a run's evaluator builds a missing one:
  # tests/test_eval_inputs.py).
  empty = str(tmp_path / "none")
  with pytest.raises(ConfigError) as error:
    classifiers.load_classifier("mnist", empty)
  assert (f"Build it once with: python tools/train_classifier.py --dataset=mnist "
          f"--eval.classifier_dir={empty}") in str(error.value)
  assert os.path.join(empty, "mnist.keras") in str(error.value)
  # The default cache comes from the environment; the command needs no flag then.
  monkeypatch.setenv(classifiers.CLASSIFIER_DIR_ENV, empty)
  with pytest.raises(ConfigError, match=r"with: python tools/train_classifier.py "
                     r"--dataset=mnist$"):
    classifiers.load_classifier("mnist")
  # Stacked-MNIST is evaluated with the MNIST classifier.
  with pytest.raises(ConfigError, match="--dataset=mnist$"):
    classifiers.load_classifier("stacked_mnist")
  # A damaged file: rebuild.
  os.makedirs(empty)
  with open(os.path.join(empty, "mnist.keras"), "w") as f:
    f.write("not a model")
  with pytest.raises(ConfigError, match="cannot read .* rebuild it with: python"):
    classifiers.load_classifier("mnist")


def test_image_data_defaults_to_the_classifier_and_samples(mnist_classifier_dir, mnist):  # pylint: disable=redefined-outer-name
  config = mnist_config(**{"eval.classifier_dir": mnist_classifier_dir,
                           "eval.num_samples": 500})
  evaluators = evaluation.build_evaluators(config, mnist, K)
  assert [e.name for e in evaluators] == ["classifier", "samples"]
  assert evaluators[0].scalar_names == (
      "classifier_score", "fid", "kid", "label_coverage", "label_kl", "precision",
      "recall", "density", "coverage", "fid_ci_low", "fid_ci_high", "kid_ci_low",
      "kid_ci_high")
  ring = DATASETS.get("ring")(Config().data)
  for name in ("classifier", "stacked_mnist", "inception"):
    with pytest.raises(ConfigError, match=f"'{name}' needs"):
      evaluation.build_evaluators(Config().replace(**{"eval.evaluators": (name,)}),
                                  ring, K)
  with pytest.raises(ConfigError, match="'inception' evaluator needs InceptionV3 "
                     "weights: set --eval.inception_weights=PATH"):
    evaluation.build_evaluators(mnist_config(**{"eval.evaluators": ("inception",)}),
                                mnist, K)


# ------------------------------------------------------------------ real MNIST
@pytest.fixture(scope="module")
def real_results(network, mnist):  # pylint: disable=redefined-outer-name
  """The evaluator on 1000 real test images as samples, against 1000 others, and
  the network's outputs for the samples."""
  images, labels = mnist.examples("test")
  evaluator = FeatureEvaluator(network, images[:1000], K, num_samples=1000,
                               class_names=mnist.class_names, kid_subsets=10)
  samples, sample_labels = images[5000:6000], labels[5000:6000]
  k = label_generators(sample_labels)
  results = dict(evaluator.evaluate_samples(samples, k))
  scores, features = (t.numpy() for t in network(samples))
  return evaluator, np.argmax(scores, axis=1), features, k, results


def test_real_test_images_cover_every_class_evenly(real_results):  # pylint: disable=redefined-outer-name
  evaluator, predicted, _, _, results = real_results
  assert results["num_samples"] == results["num_real"] == 1000
  assert results["label_coverage"] == results["num_classes"] == 10
  assert results["label_kl"] < 0.05
  assert results["label_histogram"] == np.bincount(predicted, minlength=10).tolist()
  assert set(evaluation.scalars([evaluator], {"classifier": results})) == set(
      evaluator.scalar_names)
  assert 3.0 < results["classifier_score"] <= 10.0
  assert results["score_splits"] == 10
  assert results["network"]["path"].endswith("mnist.keras")


def test_per_generator_labels_are_the_constructed_counts(real_results):  # pylint: disable=redefined-outer-name
  _, predicted, _, k, results = real_results
  table = np.array(results["per_generator_labels"])
  expected = np.zeros((K, 10), int)
  np.add.at(expected, (k, predicted), 1)
  np.testing.assert_array_equal(table, expected)
  np.testing.assert_array_equal(table.sum(axis=1), np.bincount(k, minlength=K))
  # Generator g was given the digits d with d % K == g: most of its samples are
  # predicted as those digits.
  own = sum(table[g, d] for d in range(10) for g in [d % K])
  assert own / table.sum() > 0.8


def test_fid_and_kid_of_real_images_are_small_next_to_noise(real_results):  # pylint: disable=redefined-outer-name
  evaluator, _, fake, _, results = real_results
  noise = np.random.default_rng(0).uniform(-1, 1, (1000, 28, 28, 1)).astype(np.float32)
  noisy = dict(evaluator.evaluate_samples(noise, np.zeros(1000, np.int32)))
  assert results["fid"] < 0.1 * noisy["fid"]
  assert results["kid"] < 0.1 * noisy["kid"]
  assert noisy["label_kl"] > results["label_kl"]
  # The same as the plain functions on the network's features.
  real = evaluator.real_statistics()[0]
  assert results["fid"] == pytest.approx(image_metrics.fid_from_features(fake, real),
                                         rel=1e-6, abs=1e-6)
  assert results["kid"] == pytest.approx(
      image_metrics.kid(fake, real, num_subsets=10)[0], rel=1e-5, abs=1e-8)
  assert "classes 10/10" in evaluator.summary_fields(results)
  text = evaluator.format(results)
  assert "1000 samples vs 1000 real test images" in text
  assert "classes: 10/10" in text


def test_evaluate_draws_batches_like_evaluate_samples(network, mnist):  # pylint: disable=redefined-outer-name
  images, labels = mnist.examples("test", 2000)
  pool = tf.constant(images)
  pool_labels = tf.constant(labels, tf.int32)

  def sample_fn(n, seed):
    index = tf.random.stateless_uniform([n], seed, 0, len(images), dtype=tf.int32)
    return tf.gather(pool, index), tf.gather(pool_labels, index) % K

  evaluator = FeatureEvaluator(network, images[:300], K, num_samples=500,
                               batch_size=200, class_names=mnist.class_names,
                               kid_subsets=5)
  seed = tf.constant([3, 4], tf.int64)
  got = dict(evaluator.evaluate(sample_fn, seed))
  draws = [sample_fn(n, s) for n, s in evaluation.batch_seeds(seed, 500, 200)]
  x = np.concatenate([d[0].numpy() for d in draws])
  k = np.concatenate([d[1].numpy() for d in draws])
  expected = dict(evaluator.evaluate_samples(x, k))
  assert got["num_samples"] == 500
  assert got["per_generator_labels"] == expected["per_generator_labels"]
  assert got["label_histogram"] == expected["label_histogram"]
  for name in ("classifier_score", "fid", "kid"):
    assert got[name] == pytest.approx(expected[name], rel=1e-5, abs=1e-8)


# ------------------------------------------------------------------ Stacked-MNIST
def digit_network():
  """A stand-in digit classifier: an image of constant value -1 + 2 d / 9 is digit
  d (logits 9 d m + 9 d - d^2 of the mean pixel m peak at d)."""
  inputs = keras.Input((28, 28, 1))
  mean = keras.layers.GlobalAveragePooling2D()(inputs)
  digits = np.arange(10, dtype=np.float32)
  dense = keras.layers.Dense(10)
  logits = dense(mean)
  dense.set_weights([9 * digits[None, :], 9 * digits - digits ** 2])
  return FeatureNetwork("digits", keras.Model(inputs, [logits, mean]), batch_size=30)


def stacked_images(triples):
  """Three-channel images whose channel c shows digit triples[:, c]."""
  values = -1.0 + 2.0 * np.asarray(triples, np.float32) / 9.0
  return np.tile(values[:, None, None, :], (1, 28, 28, 1))


def test_stacked_mnist_counts_the_modes_of_constructed_triples():
  rng = np.random.default_rng(0)
  triples = rng.integers(0, 10, (300, 3))
  triples[:100] = [7, 0, 3]  # one crowded mode
  k = rng.integers(0, K, 300).astype(np.int32)
  evaluator = StackedMnistEvaluator(digit_network(), K, num_samples=300)
  results = dict(evaluator.evaluate_samples(stacked_images(triples), k))
  modes = 100 * triples[:, 0] + 10 * triples[:, 1] + triples[:, 2]
  assert results["modes"] == len(np.unique(modes))
  assert results["num_modes_total"] == 1000
  histogram = np.bincount(modes, minlength=1000)
  assert results["mode_histogram"] == histogram.tolist()
  q = histogram[histogram > 0] / 300
  assert results["mode_kl"] == pytest.approx(float(np.sum(q * np.log(1000 * q))))
  assert results["per_generator_modes"] == [len(np.unique(modes[k == g]))
                                            for g in range(K)]
  assert evaluator.summary_fields(results)[0] == f"modes {results['modes']}/1000"
  assert results["mode_kl"] == pytest.approx(sum(results["channel_kl"])
                                             + results["channel_dependence"])
  assert f"channel dependence {results['channel_dependence']:.4f}" in (
      evaluator.format(results))


def test_stacked_mnist_evaluate_draws_from_the_sampling_function():
  all_triples = np.array([[a, b, c] for a in range(10) for b in range(10)
                          for c in range(10)])
  pool = tf.constant(stacked_images(all_triples))

  def sample_fn(n, seed):  # every mode exactly once, in batches of 100
    start = tf.cast(seed[0], tf.int32) * 100
    return pool[start:start + n], tf.zeros([n], tf.int32)

  evaluator = StackedMnistEvaluator(digit_network(), 1, num_samples=100,
                                    batch_size=100)
  results = dict(evaluator.evaluate(sample_fn, tf.constant([4, 0], tf.int64)))
  assert results["modes"] == 100
  assert results["mode_kl"] == pytest.approx(math.log(10))
  assert np.flatnonzero(results["mode_histogram"]).tolist() == list(range(400, 500))
  # Channel 0 always shows a 4, the other two every digit, independently.
  assert results["channel_kl"] == pytest.approx([math.log(10), 0.0, 0.0])
  assert results["channel_dependence"] == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ InceptionV3
@pytest.mark.slow
def test_inception_from_a_weights_file_gives_score_fid_and_kid(tmp_path, mnist):  # pylint: disable=redefined-outer-name
  path = str(tmp_path / "inception.weights.h5")
  keras.utils.set_random_seed(0)
  keras.applications.InceptionV3(include_top=True, weights=None).save_weights(path)
  config = mnist_config(**{"eval.evaluators": ("inception",), "eval.num_samples": 4,
                           "eval.inception_weights": path})
  [evaluator] = evaluation.build_evaluators(config, mnist, K)
  assert evaluator.scalar_names[:3] == ("inception_score", "inception_fid",
                                        "inception_kid")
  assert "inception_precision" in evaluator.scalar_names
  images, labels = mnist.examples("test", 4, seed=[1, 2])
  results = dict(evaluator.evaluate_samples(images, label_generators(labels)))
  assert results["num_real"] == 4
  assert 1.0 <= results["inception_score"] <= 1000.0
  assert results["inception_fid"] >= 0.0 and math.isfinite(results["inception_kid"])
  assert results["network"]["top"] is True
  assert "label_histogram" not in results
  assert evaluator.summary_fields(results)[0].startswith("IS ")
  # What InceptionV3 is given: 299x299x3 in [-1, 1], grey repeated over channels.
  x = inception.preprocess(np.array([-1.0, 1.0], np.float32).reshape(2, 1, 1, 1))
  assert x.shape == (2, 299, 299, 3)
  np.testing.assert_allclose(x[:, 0, 0, :], [[-1.0] * 3, [1.0] * 3], atol=1e-6)
  with pytest.raises(ConfigError, match="no such file"):
    inception.load_inception(str(tmp_path / "missing.h5"))


# ------------------------------------------------------------------ console width
@pytest.mark.parametrize("names, width, layout", [
    ([str(d) for d in range(10)], 100, "dominant and class columns"),
    ([str(d) for d in range(10)], 80, "class columns only"),
    (["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
      "truck"], 80, "class columns only"),
    ([str(d) for d in range(10)], 60, "classes with >= 5%"),
    ([f"class{c}" for c in range(40)], 80, "classes with >= 5%"),
])
def test_the_generator_table_fits_the_console(names, width, layout):
  rng = np.random.default_rng(0)
  table = rng.integers(0, 600, size=(10, len(names)))
  rows = classifier_lib._generator_table(table, names, width)  # pylint: disable=protected-access
  assert len(rows) == 2 + len(table)
  assert max(map(len, rows)) <= width
  header = rows[0]
  assert ("dominant" in header) == (layout != "class columns only")
  assert ("classes with >= 5%" in header) == (layout == "classes with >= 5%")
  for g, row in enumerate(table):
    fields = rows[2 + g].split()
    assert int(fields[0]) == g and int(fields[1]) == row.sum()
    if layout != "classes with >= 5%":  # every count is shown
      assert [int(c) for c in fields[-len(names):]] == list(row)
