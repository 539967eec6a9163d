"""Tests for tf_stackelberg.evaluation: the compiled mixture evaluator against the NumPy
reference `mixture_metrics`, evaluation through a sampling function batch by batch,
the scatter image, the evaluator registry and the helpers that combine results."""

import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config
from tf_stackelberg.data.mixtures import MixtureData, grid, ring
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.data.source import DataSource
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.evaluation.evaluators.mixture import MixtureEvaluator
from tf_stackelberg.evaluation.evaluators.scatter import ScatterEvaluator
from tf_stackelberg.evaluation.registry import EVALUATORS
from tf_stackelberg.metrics.mixture_metrics import mixture_metrics

K = 3


def mixture_samples(spec, num_samples, num_generators, seed, nonfinite=0):
  """Points near the modes (some within 3 std, some not) and generator indices, with
  `nonfinite` rows of NaN or infinity."""
  rng = np.random.default_rng(seed)
  centers = spec.centers[rng.integers(0, len(spec.centers), num_samples)]
  scale = spec.std * rng.choice([0.5, 2.0, 8.0], size=(num_samples, 1))
  x = (centers + scale * rng.normal(size=(num_samples, 2))).astype(np.float32)
  rows = rng.choice(num_samples, size=nonfinite, replace=False)
  for i, row in enumerate(rows):
    x[row, i % 2] = (np.nan, np.inf, -np.inf)[i % 3]
  k = rng.integers(0, num_generators, num_samples).astype(np.int32)
  return x, k


def results(pairs):
  return dict(pairs)


# ------------------------------------------------------------------ mixture evaluator
@pytest.mark.parametrize("spec,num_samples,batch_size,nonfinite", [
    (ring(), 1000, 300, 7),      # several batches, the last one short
    (ring(), 1000, 10000, 0),    # one batch
    (grid(), 2500, 1000, 25),
    (ring(std=0.05), 601, 200, 3),
])
def test_mixture_evaluator_equals_numpy_reference(spec, num_samples, batch_size,
                                                  nonfinite):
  x, k = mixture_samples(spec, num_samples, K, seed=num_samples, nonfinite=nonfinite)
  evaluator = MixtureEvaluator(spec, K, num_samples=num_samples, batch_size=batch_size)
  got = results(evaluator.evaluate_samples(x, k))
  expected = mixture_metrics(x, spec.centers, spec.std, generator_ids=k,
                             num_generators=K)
  assert got == expected
  # The samples are a real test: some HQ, not all, and non-finite ones never HQ.
  assert 0.1 < got["high_quality"] < 0.9
  assert got["num_samples"] == num_samples
  finite = np.isfinite(x).all(axis=1)
  assert finite.sum() == num_samples - nonfinite


def test_mixture_evaluator_reports_a_generator_without_samples():
  spec = ring()
  x, k = mixture_samples(spec, 500, 2, seed=1)
  got = results(MixtureEvaluator(spec, 4, batch_size=128).evaluate_samples(x, k))
  assert got == mixture_metrics(x, spec.centers, spec.std, generator_ids=k,
                                num_generators=4)
  assert len(got["per_generator"]) == 4
  assert got["per_generator"][3]["num_samples"] == 0
  assert got["per_generator"][3]["dominant_mode"] is None


def test_mixture_evaluator_on_float64_and_int64_inputs():
  spec = ring()
  x, k = mixture_samples(spec, 400, K, seed=2, nonfinite=2)
  evaluator = MixtureEvaluator(spec, K, batch_size=150)
  assert (results(evaluator.evaluate_samples(x.astype(np.float64), k.astype(np.int64)))
          == results(evaluator.evaluate_samples(x, k)))


def traceable_sample_fn(n, seed):
  """A deterministic sampling function of the stateless `seed`: points near the ring."""
  seed = tf.cast(seed, tf.int64)
  mode_seed, noise_seed, k_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 3))
  centers = tf.constant(ring().centers)
  modes = tf.random.stateless_uniform([n], mode_seed, 0, 8, dtype=tf.int32)
  noise = tf.random.stateless_normal([n, 2], noise_seed, stddev=0.03)
  k = tf.random.stateless_uniform([n], k_seed, 0, K, dtype=tf.int32)
  return tf.gather(centers, modes) + noise, k


def test_batch_seeds_first_batch_uses_the_seed_itself():
  seed = tf.constant([4, 2], tf.int64)
  batches = list(evaluation.batch_seeds(seed, 1000, 300))
  assert [n for n, _ in batches] == [300, 300, 300, 100]
  np.testing.assert_array_equal(batches[0][1].numpy(), [4, 2])
  for i, (_, batch_seed) in enumerate(batches[1:], start=1):
    np.testing.assert_array_equal(
        batch_seed.numpy(), tf.random.experimental.stateless_fold_in(seed, i).numpy())
  assert len({tuple(s.numpy()) for _, s in batches}) == 4
  one = list(evaluation.batch_seeds(seed, 50, 300))
  assert [n for n, _ in one] == [50]
  np.testing.assert_array_equal(one[0][1].numpy(), [4, 2])
  assert [n for n, _ in evaluation.batch_seeds(seed, 600, 300)] == [300, 300]


def test_evaluate_draws_batch_by_batch_with_batch_seeds():
  seed = tf.constant([7, 1], tf.int64)
  evaluator = MixtureEvaluator(ring(), K, num_samples=1000, batch_size=300)
  got = results(evaluator.evaluate(traceable_sample_fn, seed))
  drawn = [traceable_sample_fn(n, s) for n, s in evaluation.batch_seeds(seed, 1000, 300)]
  x = np.concatenate([d[0].numpy() for d in drawn])
  k = np.concatenate([d[1].numpy() for d in drawn])
  assert len(x) == 1000
  assert got == mixture_metrics(x, ring().centers, ring().std, generator_ids=k,
                                num_generators=K)
  assert got["modes"] == 8
  # Deterministic in the seed, different for another seed.
  assert results(evaluator.evaluate(traceable_sample_fn, seed)) == got
  other = results(evaluator.evaluate(traceable_sample_fn, tf.constant([7, 2], tf.int64)))
  assert other["mode_histogram"] != got["mode_histogram"]


def test_evaluation_in_one_batch_draws_sample_fn_with_the_seed():
  seed = tf.constant([3, 9], tf.int64)
  evaluator = MixtureEvaluator(ring(), K, num_samples=500)  # default batch: one call
  x, k = traceable_sample_fn(500, seed)
  assert results(evaluator.evaluate(traceable_sample_fn, seed)) == mixture_metrics(
      x.numpy(), ring().centers, ring().std, generator_ids=k.numpy(), num_generators=K)


def test_mixture_evaluator_formats_its_results():
  evaluator = MixtureEvaluator(ring(), K, num_samples=500)
  got = results(evaluator.evaluate(traceable_sample_fn, tf.constant([1, 1], tf.int64)))
  assert evaluator.format(got).startswith("samples: 500  modes: 8/8")
  fields = evaluator.summary_fields(got)
  assert fields == ["modes 8/8", f"HQ {100 * got['high_quality']:.1f}%",
                    f"KL {got['reverse_kl']:.4f}"]
  assert evaluator.summary(got) == "  ".join(fields)


# ------------------------------------------------------------------ registry
@pytest.fixture(scope="module")
def ring_data():
  return DATASETS.get("ring")(Config().data)


def test_build_evaluators_uses_the_dataset_default(ring_data):
  config = Config().replace(**{"eval.num_samples": 1234})
  evaluators = evaluation.build_evaluators(config, ring_data, K)
  assert [e.name for e in evaluators] == list(ring_data.evaluators)
  assert [e.name for e in evaluators] == ["mixture", "scatter"]
  mixture, scatter = evaluators
  assert isinstance(mixture, MixtureEvaluator) and isinstance(scatter, ScatterEvaluator)
  assert mixture.num_samples == 1234 and mixture.num_generators == K
  assert mixture.spec is ring_data.spec
  chosen = evaluation.build_evaluators(
      config.replace(**{"eval.evaluators": ("scatter",)}), ring_data, K)
  assert [e.name for e in chosen] == ["scatter"]


def test_unknown_evaluator_is_refused(ring_data):
  config = Config().replace(**{"eval.evaluators": ("mixture", "fid")})
  with pytest.raises(ConfigError, match=r"--eval.evaluators='fid' is not a known "
                     r"evaluator \(known: .*mixture, .*scatter") as error:
    evaluation.build_evaluators(config, ring_data, K)
  assert "fid" not in str(error.value).split("known: ")[1]


class _Images(DataSource):
  """A data source of small images (not a mixture, not 2-D)."""

  element_shape = (4, 4, 1)
  evaluators = ()

  def batches(self, batch_size, seed, start_step=0, num_steps=None):
    return tf.data.Dataset.from_tensors(tf.zeros([batch_size, 4, 4, 1])).repeat()

  def held_out(self, num_examples, seed):
    return tf.zeros([num_examples, 4, 4, 1])


class _Points(_Images):
  """2-D points without a mixture spec."""

  element_shape = (2,)

  def held_out(self, num_examples, seed):
    return tf.random.stateless_normal([num_examples, 2], seed) * 3.0


@pytest.mark.parametrize("source", [_Images(), _Points()])
def test_mixture_evaluator_refuses_a_non_mixture_data_source(source):
  config = Config().replace(**{"eval.evaluators": ("mixture",)})
  with pytest.raises(ConfigError, match="'mixture' needs a Gaussian-mixture dataset"):
    evaluation.build_evaluators(config, source, K)


def test_scatter_refuses_data_that_is_not_2d():
  config = Config().replace(**{"eval.evaluators": ("scatter",)})
  with pytest.raises(ConfigError, match="'scatter' needs 2-D data"):
    evaluation.build_evaluators(config, _Images(), K)


def test_scatter_without_a_mixture_frames_the_real_points():
  config = Config().replace(**{"eval.evaluators": ("scatter",)})
  (scatter,) = evaluation.build_evaluators(config, _Points(), K)
  span = scatter.extent[1]
  assert scatter.extent == (-span, span, -span, span)
  assert span == pytest.approx(1.25 * np.abs(scatter.real).max())


# ------------------------------------------------------------------ scatter
def test_scatter_yields_an_image(ring_data):
  (scatter,) = evaluation.build_evaluators(
      Config().replace(**{"eval.evaluators": ("scatter",)}), ring_data, K)
  assert scatter.image_names == ("samples",) and scatter.scalar_names == ()
  assert scatter.real.shape == (2000, 2)
  out = results(scatter.evaluate(traceable_sample_fn, tf.constant([0, 1], tf.int64),
                                 step=100))
  assert set(out) == {"samples"}
  image = out["samples"]
  assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
  assert image.shape[0] >= 100 and image.shape[1] >= 100
  assert len(np.unique(image.reshape(-1, 3), axis=0)) > 3  # not a blank canvas
  # The same samples give the same image.
  x, k = traceable_sample_fn(scatter.num_samples, tf.constant([0, 1], tf.int64))
  again = results(scatter.evaluate_samples(x.numpy(), k.numpy(), step=100))["samples"]
  np.testing.assert_array_equal(again, image)


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def evaluated(ring_data):
  config = Config().replace(**{"eval.num_samples": 600})
  evaluators = evaluation.build_evaluators(config, ring_data, K)
  out = evaluation.run_evaluators(evaluators, traceable_sample_fn,
                                  tf.constant([2, 5], tf.int64), step=7)
  return evaluators, out


def test_run_evaluators_nests_results_per_evaluator(evaluated):
  evaluators, out = evaluated
  assert set(out) == {"mixture", "scatter"}
  assert out["mixture"]["num_samples"] == 600
  assert set(out["scatter"]) == {"samples"}
  # The same samples given directly give the same numbers.
  x, k = traceable_sample_fn(600, tf.constant([2, 5], tf.int64))
  direct = evaluation.run_evaluators(evaluators, step=7, samples=(x.numpy(), k.numpy()))
  assert direct["mixture"] == out["mixture"]


def test_scalars_images_and_json_parts(evaluated):
  evaluators, out = evaluated
  scalars = evaluation.scalars(evaluators, out)
  assert set(scalars) == {"modes", "high_quality", "reverse_kl"}
  assert all(isinstance(v, float) for v in scalars.values())
  assert scalars["modes"] == out["mixture"]["modes"]
  images = evaluation.images(evaluators, out)
  assert set(images) == {"samples"} and images["samples"].dtype == np.uint8
  plain = evaluation.without_images(evaluators, out)
  assert plain == {"mixture": out["mixture"], "scatter": {}}
  text = evaluation.format_results(evaluators, out)
  assert text == evaluators[0].format(out["mixture"])  # scatter has no text
  assert evaluation.summary_line(evaluators, out) == evaluators[0].summary(
      out["mixture"])


def test_mixture_data_is_a_data_source():
  assert issubclass(MixtureData, DataSource)
