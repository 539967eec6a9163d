"""Bad inputs of the evaluation: too few samples for an evaluator, damaged
checkpoints under `--eval.checkpoints=all`, a damaged evaluation history, damaged or
foreign evaluation classifiers, a read-only run directory (`--eval.report_dir`) and
the classifier a run builds itself the first time it needs one.

Image evaluators are exercised on small synthetic image sets and small untrained (or
one-epoch) classifiers, so that no test trains the real MNIST classifier.
"""

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

import shared_ring_run as shared
from conftest import REPO, file_digests, run_main, tiny_config
from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError, StorageError
from tf_stackelberg.config.sections import Config
from tf_stackelberg.data.images import ImageData
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.evaluation import classifiers
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.evaluation.evaluators.classifier import FeatureEvaluator
from tf_stackelberg.evaluation.evaluators.mixture import MixtureEvaluator
from tf_stackelberg.evaluation.evaluators.samples import SamplesEvaluator
from tf_stackelberg.evaluation.networks import FeatureNetwork
from tf_stackelberg.training import trainer

K = 3
DIGITS = tuple(str(d) for d in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")
# A small classifier architecture: the files and checks are those of the real ones.
SMALL = classifiers.Architecture(blocks=((4, 1),), features=8, dropout=0.0, epochs=1)


def synthetic_digits(name="mnist", size=12, num_train=300, num_test=100,
                     class_names=DIGITS):
  """Labelled images a classifier learns at once: class c lights row block c."""
  rng = np.random.default_rng(0)

  def split(n):
    labels = rng.integers(0, len(class_names), n)
    images = rng.integers(0, 40, (n, size, size, 1)).astype(np.uint8)
    for i, c in enumerate(labels):
      images[i, c % size, :, 0] = 255
    return images, labels
  return ImageData(name, split(num_train), split(num_test), class_names=class_names,
                   description=f"synthetic {name}")


def image_config(**values):
  return Config().replace(**{"data.dataset": "mnist", **values})


def save_untrained(directory, dataset, element_shape=(12, 12, 1), report=None,
                   model_name=None):
  """An untrained classifier of `dataset` saved as the tool saves one; returns its
  path. `report` replaces the record written beside it."""
  model = classifiers.build_classifier(element_shape, 10, SMALL,
                                       name=model_name or f"{dataset}_classifier")
  path = os.path.join(directory, f"{dataset}.keras")
  record = {"dataset": dataset, "test_accuracy": 0.1,
            "class_names": list(DIGITS if dataset == "mnist" else FASHION)}
  classifiers.save_classifier(model, record if report is None else report, path)
  return path


# ------------------------------------------------------------------ 1. sample counts
@pytest.mark.parametrize("evaluator", ["classifier", "inception"])
def test_too_few_samples_for_fid_are_refused_before_any_network_is_loaded(
    tmp_path, evaluator):
  data = synthetic_digits()
  cache = tmp_path / "cache"
  config = image_config(**{"eval.num_samples": 1, "eval.classifier_dir": str(cache),
                           "eval.evaluators": (evaluator,)})
  with pytest.raises(ConfigError) as error:
    evaluation.build_evaluators(config, data, K)
  assert str(error.value) == (
      f"--eval.num_samples=1 is too few for the '{evaluator}' evaluator (FID and KID "
      "need at least 2 samples and 2 real images): set --eval.num_samples to at least "
      f"2, or leave '{evaluator}' out of --eval.evaluators")
  assert not cache.exists()  # no classifier was built for it
  # Sampling: the sampler's output is what the evaluators are given.
  sample = config.replace(mode="sample", **{"eval.num_samples": 500,
                                            "sampling.num_samples": 1})
  with pytest.raises(ConfigError, match=r"^--sampling.num_samples=1 is too few for "
                     f"the '{evaluator}' evaluator"):
    evaluation.build_evaluators(sample, data, K)
  # In sample mode the real reference set of FID and KID is --eval.num_samples.
  with pytest.raises(ConfigError, match=r"^--eval.num_samples=1 is too few"):
    evaluation.build_evaluators(sample.replace(**{"eval.num_samples": 1,
                                                  "sampling.num_samples": 50}), data, K)
  assert not cache.exists()


def test_the_feature_evaluator_itself_refuses_one_sample():
  network = FeatureNetwork("net", classifiers.build_classifier((12, 12, 1), 10, SMALL))
  with pytest.raises(ConfigError, match="needs at least 2 samples"):
    FeatureEvaluator(network, np.zeros((4, 12, 12, 1), np.float32), K, num_samples=1)


def test_two_samples_are_enough_for_fid_and_kid(tmp_path):
  data = synthetic_digits()
  save_untrained(str(tmp_path), "mnist")
  config = image_config(**{"eval.num_samples": 2, "eval.classifier_dir": str(tmp_path),
                           "eval.evaluators": ("classifier",)})
  [evaluator] = evaluation.build_evaluators(config, data, K)
  x = data.examples("test", 2)[0]
  results = dict(evaluator.evaluate_samples(x, np.array([0, 1])))
  assert results["num_samples"] == results["num_real"] == 2
  assert np.isfinite(results["fid"]) and np.isfinite(results["kid"])


def test_the_other_evaluators_evaluate_a_single_sample():
  """mixture, samples (and scatter, stacked_mnist: counts of the same kind) need no
  minimum beyond --eval.num_samples > 0."""
  ring = tiny_config("unused")
  [mixture] = evaluation.build_evaluators(ring.replace(**{"eval.num_samples": 1,
                                                          "eval.evaluators":
                                                          ("mixture",)}),
                                          DATASETS.get("ring")(ring.data), K)
  assert isinstance(mixture, MixtureEvaluator)
  center = np.asarray(mixture.spec.centers[:1], np.float32)
  results = dict(mixture.evaluate_samples(center, np.array([0])))
  assert results["num_samples"] == 1 and results["modes"] == 1
  grid = dict(SamplesEvaluator(K).evaluate_samples(np.zeros((1, 12, 12, 1)),
                                                   np.array([0])))
  assert grid["samples"].dtype == np.uint8


def test_one_eval_sample_on_mnist_stops_before_training(tmp_path, capsys,
                                                        offline_data_dir):
  model_dir = tmp_path / "run"
  status = run_main("--flagfile=configs/mnist.cfg", f"--model_dir={model_dir}",
                    "--trainer.train_steps=100", "--eval.num_samples=1",
                    "--data.source=offline", f"--data.data_dir={offline_data_dir[0]}",
                    f"--eval.classifier_dir={tmp_path / 'cache'}")
  assert status == 2
  err = capsys.readouterr().err
  assert err.startswith("error: --eval.num_samples=1 is too few for the 'classifier' "
                        "evaluator") and err.count("\n") == 1
  # Refused before anything was trained or written.
  assert not (model_dir / "checkpoints").exists()
  assert not (model_dir / "flags.json").exists()
  assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------ 2. checkpoints=all
SETTINGS = {"trainer.train_steps": 300, "trainer.keep_checkpoints": 10,
            "eval.num_samples": 500}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
  """A 300-step ring run with checkpoints at 100, 200 and 300, shared with other test
  files: read only, each case works on a copy (`_copy`)."""
  return shared.base_run(tmp_path_factory)[0]


def _copy(base_run, tmp_path, **overrides):
  model_dir = tmp_path / "run"
  shutil.copytree(base_run.model_dir, model_dir)
  return tiny_config(model_dir, **{**SETTINGS, **overrides})


def _truncate_data(config, step):
  path = os.path.join(config.model_dir, "checkpoints",
                      f"ckpt-{step}.data-00000-of-00001")
  os.truncate(path, os.path.getsize(path) // 2)
  return os.path.join(config.model_dir, "checkpoints", f"ckpt-{step}")


@pytest.mark.parametrize("damaged", [[100], [300], [100, 200]])
def test_all_checkpoints_skips_those_that_do_not_restore(base_run, tmp_path, capsys,
                                                         damaged):
  config = _copy(base_run, tmp_path)
  prefixes = [_truncate_data(config, step) for step in damaged]
  before = file_digests(config.model_dir)
  assert run_main(f"--model_dir={config.model_dir}", "--mode=eval",
                  "--eval.checkpoints=all", "--eval.num_samples=500") == 0
  out = capsys.readouterr().out
  for prefix in prefixes:
    assert out.count(f"Skipped checkpoint {prefix}: data file truncated (read less "
                     "bytes than requested).\n") == 1
  kept = [s for s in (100, 200, 300) if s not in damaged]
  assert f"Evaluated {len(kept)} of 3 checkpoints; skipped {len(damaged)}" in out
  curves = files.read_json(os.path.join(config.model_dir, "eval_curves.json"))
  assert [c["step"] for c in curves] == kept
  for step in (100, 200, 300):
    report = os.path.join(config.model_dir, f"eval_metrics_step{step}.json")
    assert os.path.exists(report) == (step in kept)
  # The checkpoints themselves stay as they were (evaluation only reads them).
  after = file_digests(config.model_dir)
  assert {k: v for k, v in after.items() if k.startswith("checkpoints")} == {
      k: v for k, v in before.items() if k.startswith("checkpoints")}


def test_all_checkpoints_exits_2_when_none_restores(base_run, tmp_path, capsys):
  config = _copy(base_run, tmp_path)
  for step in (100, 200, 300):
    _truncate_data(config, step)
  before = file_digests(config.model_dir)
  assert run_main(f"--model_dir={config.model_dir}", "--mode=eval",
                  "--eval.checkpoints=all", "--eval.num_samples=500") == 2
  captured = capsys.readouterr()
  assert captured.out.count("Skipped checkpoint") == 3
  checkpoint_dir = os.path.join(config.model_dir, "checkpoints")
  assert captured.err == (
      f"error: no checkpoint in {checkpoint_dir} restores (ckpt-100: data file "
      "truncated (read less bytes than requested); ckpt-200: data file truncated (read "
      "less bytes than requested); ckpt-300: data file truncated (read less bytes than "
      "requested))\n")
  assert file_digests(config.model_dir) == before


# ------------------------------------------------------------------ 3. eval history
def _history_path(config):
  return os.path.join(config.model_dir, trainer.HISTORY_FILE)


def test_a_truncated_history_is_kept_aside_rebuilt_and_training_resumes(
    base_run, tmp_path, capsys, default_strategy):
  config = _copy(base_run, tmp_path, **{"trainer.train_steps": 400})
  path = _history_path(config)
  original = files.read_json(path)
  with open(path, "rb") as f:
    damaged = f.read()[:150]
  with open(path, "wb") as f:
    f.write(damaged)
  final = trainer.train(config, default_strategy)
  assert final["step"] == 400
  out = capsys.readouterr().out
  assert (f"{path} is damaged (not valid JSON: Expecting " in out and
          f"moved it to {path}.damaged and rebuilt 3 from the TensorBoard logs.\n"
          in out)
  with open(f"{path}.damaged", "rb") as f:
    assert f.read() == damaged
  history = files.read_json(path)
  assert [h["step"] for h in history] == [100, 200, 300, 400]
  # The rebuilt evaluations are those of the original file, to float32 precision.
  for rebuilt, logged in zip(history, original):
    assert rebuilt.keys() == logged.keys()
    for name, value in logged.items():
      assert rebuilt[name] == pytest.approx(value, rel=1e-6, abs=1e-6), name


def test_a_finished_run_writes_its_rebuilt_history_at_once(base_run, tmp_path, capsys,
                                                           default_strategy):
  config = _copy(base_run, tmp_path)
  path = _history_path(config)
  original = files.read_json(path)
  with open(path, "w") as f:
    f.write('{"step": 100}')
  assert trainer.train(config, default_strategy)["trained_steps_this_run"] == 0
  assert (f"{path} is damaged (a JSON dict, not a list of evaluations): moved it to "
          f"{path}.damaged and rebuilt 3 from the TensorBoard logs.\n"
          in capsys.readouterr().out)
  assert [h["step"] for h in files.read_json(path)] == [h["step"] for h in original]


def test_the_rebuilt_history_ends_at_the_restored_step(base_run):
  assert sorted(trainer.logged_evaluations(base_run.model_dir, 250)) == [100, 200]


@pytest.mark.parametrize("content, reason, kept", [
    ({"step": 100}, "a JSON dict, not a list of evaluations", []),
    ("[1, 2]", "2 of its 2 entries are not evaluations", []),
    ([{"step": 100, "modes": 8}, {"modes": 3}, {"step": "200"}, {"step": 300}],
     "2 of its 4 entries are not evaluations", [100, 300]),
    ("", "not valid JSON: Expecting value at line 1 column 1", []),
    (b"\xff[]", "not valid JSON", []),
])
def test_a_history_that_is_not_a_list_of_evaluations_is_set_aside(
    tmp_path, capsys, content, reason, kept):
  path = str(tmp_path / trainer.HISTORY_FILE)
  text = (content if isinstance(content, bytes) else
          (content if isinstance(content, str) else json.dumps(content)).encode())
  with open(path, "wb") as f:
    f.write(text)
  # An earlier damaged copy is never replaced.
  with open(f"{path}.damaged", "w") as f:
    f.write("earlier")
  history = trainer._load_history(path, up_to_step=1000)  # pylint: disable=protected-access
  assert [h["step"] for h in history] == kept
  what = (f"kept the {len(kept)} evaluations that read" if kept
          else "started a new evaluation history")
  assert capsys.readouterr().out == (
      f"{path} is damaged ({reason}): moved it to {path}.damaged.2 and {what}.\n")
  with open(f"{path}.damaged.2", "rb") as f:
    assert f.read() == text
  with open(f"{path}.damaged") as f:
    assert f.read() == "earlier"
  # The history that replaces it is written at once.
  assert files.read_json(path) == history


def test_a_sound_history_is_read_as_it_is(tmp_path, capsys):
  path = str(tmp_path / trainer.HISTORY_FILE)
  files.write_json(path, [{"step": 100, "modes": 8}, {"step": 200, "modes": 7}])
  assert trainer._load_history(path, 150) == [{"step": 100, "modes": 8}]  # pylint: disable=protected-access
  assert capsys.readouterr().out == ""
  assert os.listdir(tmp_path) == [trainer.HISTORY_FILE]


# ------------------------------------------------------------------ 4-5. classifiers
def test_a_damaged_classifier_record_names_the_file_and_the_command(tmp_path):
  save_untrained(str(tmp_path), "mnist")
  record = os.path.join(str(tmp_path), "mnist.json")
  with open(record) as f:
    text = f.read()
  command = f"python tools/train_classifier.py --dataset=mnist " \
            f"--eval.classifier_dir={tmp_path}"
  for damage in (text[:len(text) // 2], "[1, 2]", "\xff\xfe"):
    with open(record, "w", encoding="latin-1") as f:
      f.write(damage)
    with pytest.raises(ConfigError) as error:
      classifiers.load_classifier("mnist", str(tmp_path))
    message = str(error.value)
    assert message.startswith(f"{record} is damaged (")
    assert message.endswith(f"rebuild the classifier with: {command}")
    assert "\n" not in message


def test_a_damaged_record_stops_training_before_it_starts(tmp_path, capsys,
                                                          offline_data_dir):
  cache = str(tmp_path / "cache")
  save_untrained(cache, "mnist", element_shape=(28, 28, 1))
  with open(os.path.join(cache, "mnist.json"), "w") as f:
    f.write('{"dataset": "mni')
  before = file_digests(cache)
  model_dir = tmp_path / "run"
  status = run_main("--flagfile=configs/mnist.cfg", f"--model_dir={model_dir}",
                    "--trainer.train_steps=100", "--eval.num_samples=500",
                    "--data.source=offline", f"--data.data_dir={offline_data_dir[0]}",
                    f"--eval.classifier_dir={cache}")
  assert status == 2
  err = capsys.readouterr().err
  assert err == (f"error: {cache}/mnist.json is damaged (not valid JSON); rebuild the "
                 "classifier with: python tools/train_classifier.py --dataset=mnist "
                 f"--eval.classifier_dir={cache}\n")
  assert not (model_dir / "checkpoints").exists()
  assert file_digests(cache) == before  # nothing replaced


def test_a_classifier_of_another_data_set_is_refused(tmp_path):
  cache = str(tmp_path)
  # MNIST's classifier and record, copied as Fashion-MNIST's.
  mnist_path = save_untrained(cache, "mnist")
  shutil.copy(mnist_path, os.path.join(cache, "fashion_mnist.keras"))
  shutil.copy(os.path.join(cache, "mnist.json"), os.path.join(cache,
                                                              "fashion_mnist.json"))
  record = os.path.join(cache, "fashion_mnist.json")
  with pytest.raises(ConfigError) as error:
    classifiers.load_classifier("fashion_mnist", cache)
  assert str(error.value).startswith(
      f"{os.path.join(cache, 'fashion_mnist.keras')} is a classifier of mnist, not of "
      "fashion_mnist (its model is named mnist_classifier)")
  # A record of another data set beside a model of no known data set.
  save_untrained(cache, "fashion_mnist", model_name="net",
                 report={"dataset": "mnist"})
  with pytest.raises(ConfigError, match=f"^{record} records a classifier of 'mnist', "
                     "not of fashion_mnist; move .* away and build the fashion_mnist "
                     "classifier with: python tools/train_classifier.py "
                     "--dataset=fashion_mnist"):
    classifiers.load_classifier("fashion_mnist", cache)
  # A record written before records named their data set: checked by its classes.
  save_untrained(cache, "fashion_mnist", model_name="net",
                 report={"class_names": list(DIGITS)})
  with pytest.raises(ConfigError, match=f"^{record} records the classes of another "
                     "data set than fashion_mnist"):
    classifiers.load_classifier("fashion_mnist", cache, class_names=FASHION)
  network = classifiers.load_classifier("mnist", cache, class_names=DIGITS)
  assert network.info["test_accuracy"] == 0.1
  # Stacked-MNIST is evaluated with the MNIST classifier, which passes.
  assert classifiers.load_classifier("stacked_mnist", cache).num_classes == 10


def test_the_classifier_evaluator_refuses_a_foreign_classifier(tmp_path):
  cache = str(tmp_path)
  save_untrained(cache, "fashion_mnist", model_name="net",
                 report={"dataset": "mnist", "class_names": list(DIGITS)})
  fashion = synthetic_digits("fashion_mnist", class_names=FASHION)
  config = image_config(**{"data.dataset": "fashion_mnist",
                           "eval.classifier_dir": cache, "eval.num_samples": 50})
  with pytest.raises(ConfigError, match="records a classifier of 'mnist', not of "
                     "fashion_mnist"):
    evaluation.build_evaluators(config, fashion, K)


# ------------------------------------------------------------------ 6. report_dir
def test_eval_writes_its_report_into_report_dir_and_only_reads_the_run(
    base_run, tmp_path, capsys):
  config = _copy(base_run, tmp_path)
  run_dir = config.model_dir
  for root, dirs, names in os.walk(run_dir):
    for name in dirs + names:
      os.chmod(os.path.join(root, name), stat.S_IREAD | stat.S_IEXEC)
  os.chmod(run_dir, stat.S_IREAD | stat.S_IEXEC)
  before = file_digests(run_dir)
  listing = sorted(os.listdir(run_dir))
  reports = tmp_path / "reports"
  try:
    assert run_main(f"--model_dir={run_dir}", "--mode=eval",
                    f"--eval.report_dir={reports}", "--eval.num_samples=500") == 0
    assert run_main(f"--model_dir={run_dir}", "--mode=eval", "--eval.checkpoints=all",
                    f"--eval.report_dir={reports}", "--eval.num_samples=500") == 0
  finally:
    os.chmod(run_dir, stat.S_IRWXU)
  assert file_digests(run_dir) == before
  assert sorted(os.listdir(run_dir)) == listing
  assert "Checkpoint at step 300:" in capsys.readouterr().out
  written = set(os.listdir(reports))
  assert {"eval_metrics_step100.json", "eval_metrics_step200.json",
          "eval_metrics_step300.json", "samples_step300.png", "eval_curves.json",
          "logs"} <= written
  report = files.read_json(str(reports / "eval_metrics_step300.json"))
  assert report["step"] == 300 and report["mixture"]["num_samples"] == 500


def test_an_unusable_report_dir_is_refused_before_the_evaluation(base_run, tmp_path,
                                                                 capsys):
  config = _copy(base_run, tmp_path)
  blocker = tmp_path / "file"
  blocker.write_text("x")
  before = file_digests(config.model_dir)
  assert run_main(f"--model_dir={config.model_dir}", "--mode=eval",
                  f"--eval.report_dir={blocker}/reports") == 2
  assert capsys.readouterr().err == (
      f"error: --eval.report_dir={blocker}/reports has a file as a parent "
      f"({blocker}), not a directory\n")
  assert file_digests(config.model_dir) == before


def test_an_unwritable_run_directory_points_at_report_dir(base_run, tmp_path, capsys,
                                                          monkeypatch):
  """Tests run as root, whom permissions do not stop: the storage's refusal is
  simulated for the run directory alone, as `check_writable_directory` reports it."""
  config = _copy(base_run, tmp_path)
  check = files.check_writable_directory

  def refuse_run_dir(path, flag):
    if path == config.model_dir:
      raise StorageError(f"{flag}={path} is not writable ({path}: Permission denied)")
    return check(path, flag)
  monkeypatch.setattr(files, "check_writable_directory", refuse_run_dir)
  before = file_digests(config.model_dir)
  assert run_main(f"--model_dir={config.model_dir}", "--mode=eval") == 1
  assert capsys.readouterr().err == (
      f"error: --model_dir={config.model_dir} is not writable ({config.model_dir}: "
      "Permission denied); --eval.report_dir=DIR writes the report elsewhere and only "
      "reads the run\n")
  reports = tmp_path / "reports"
  assert run_main(f"--model_dir={config.model_dir}", "--mode=eval",
                  f"--eval.report_dir={reports}", "--eval.num_samples=500") == 0
  assert file_digests(config.model_dir) == before
  assert (reports / "eval_metrics_step300.json").exists()


# ------------------------------------------------------------------ 7. auto-build
@pytest.fixture
def small_mnist_architecture(monkeypatch):
  """The MNIST classifier's training shortened to one epoch of a small network."""
  monkeypatch.setitem(classifiers.ARCHITECTURES, "mnist", SMALL)


@pytest.mark.usefixtures("small_mnist_architecture")
def test_a_missing_classifier_is_built_once_where_the_tool_caches_it(
    tmp_path, capsys, monkeypatch):
  cache = str(tmp_path / "cache")
  monkeypatch.setenv(classifiers.CLASSIFIER_DIR_ENV, cache)
  data = synthetic_digits()
  config = image_config(**{"eval.num_samples": 50, "eval.evaluators": ("classifier",)})
  [evaluator] = evaluation.build_evaluators(config, data, K)
  out = capsys.readouterr().out
  path = os.path.join(cache, "mnist.keras")
  assert path == classifiers.classifier_path("mnist")  # the tool's destination
  assert out.startswith(
      f"No evaluation classifier for mnist in {cache}: training it now, once (about "
      f"4 min on 2 CPU cores); later runs reuse {path}. To build it ahead of time: "
      "python tools/train_classifier.py --dataset=mnist\n")
  assert "  synthetic mnist classifier: epoch 1/1 done in " in out
  assert f"Saved the synthetic mnist classifier to {path}: test accuracy " in out
  report = files.read_json(os.path.join(cache, "mnist.json"))
  assert report["dataset"] == "mnist" and report["train_examples"] == 300
  assert report["architecture"] == json.loads(json.dumps(dataclasses.asdict(SMALL)))
  assert evaluator.network.info["path"] == path
  x, labels = data.examples("test", 50)
  results = dict(evaluator.evaluate_samples(x, labels % K))
  assert results["network"]["test_accuracy"] == report["test_accuracy"]
  # The next run loads it.
  before = file_digests(cache)
  evaluation.build_evaluators(config, data, K)
  assert "No evaluation classifier" not in capsys.readouterr().out
  assert file_digests(cache) == before


@pytest.mark.usefixtures("small_mnist_architecture")
def test_an_unwritable_cache_is_refused_before_the_build(tmp_path, capsys):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  config = image_config(**{"eval.num_samples": 50,
                           "eval.classifier_dir": f"{blocker}/cache",
                           "eval.evaluators": ("classifier",)})
  with pytest.raises(ConfigError, match=rf"^--eval.classifier_dir={blocker}/cache has "
                     "a file as a parent"):
    evaluation.build_evaluators(config, synthetic_digits(), K)
  assert "epoch" not in capsys.readouterr().out


def test_the_load_error_still_names_the_command(tmp_path, monkeypatch):
  """`load_classifier` alone (tools, notebooks) builds nothing: it names the
  command."""
  empty = str(tmp_path / "none")
  monkeypatch.setenv(classifiers.CLASSIFIER_DIR_ENV, empty)
  with pytest.raises(ConfigError, match=r"Build it once with: python "
                     r"tools/train_classifier.py --dataset=mnist$"):
    classifiers.load_classifier("stacked_mnist")
  assert not os.path.exists(empty)


def test_the_tool_keeps_an_existing_classifier_with_if_missing(tmp_path):
  cache = str(tmp_path)
  path = save_untrained(cache, "mnist")
  before = file_digests(cache)
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, "tools", "train_classifier.py"),
       "--dataset=mnist", "--if_missing", f"--eval.classifier_dir={cache}"],
      cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
      text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout == f"{path} exists (--if_missing): kept as it is.\n"
  assert file_digests(cache) == before


def test_make_classifiers_builds_the_missing_ones_of_every_data_set():
  result = subprocess.run(["make", "-n", "classifiers"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  assert "for dataset in mnist fashion_mnist cifar10; do" in result.stdout
  assert ("tools/train_classifier.py --dataset=$dataset --if_missing"
          in result.stdout)
