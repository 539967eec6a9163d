"""Evaluation classifiers: one small CNN per image data set, trained once and cached
outside the repository (docs/design.md section 9.2).

The cache is `--eval.classifier_dir`, else $TF_STACKELBERG_CLASSIFIERS, else
`~/.cache/tf_stackelberg/classifiers`. It holds `<dataset>.keras` (the Keras model,
images in `[-1, 1]` to logits, named `<dataset>_classifier`) and `<dataset>.json`
beside it (the data set's name, test accuracy, classifier score of the real test
images, the data it was trained on, date, versions). `load_classifier` turns a cached
model into a `FeatureNetwork` whose features are the penultimate layer (the dense
layer named 'features', after its ReLU), after checking that the model and its record
are the data set's. `classifier_for` trains and caches the classifier the first time
a run needs it; `tools/train_classifier.py` (and `make classifiers`) builds them ahead
of time.

Data sets whose images are made of another data set's (Stacked-MNIST: three MNIST
digits as colour channels) use that data set's classifier (`CLASSIFIER_OF`).
"""

import dataclasses
import datetime
import os
import time
import uuid
from typing import Any, Dict, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation.networks import FeatureNetwork
from tf_stackelberg.metrics import image_metrics

CLASSIFIER_DIR_ENV = "TF_STACKELBERG_CLASSIFIERS"
DEFAULT_CLASSIFIER_DIR = os.path.join("~", ".cache", "tf_stackelberg", "classifiers")
TOOL = "tools/train_classifier.py"
FEATURES_LAYER = "features"
# Data sets evaluated with the classifier of another data set.
CLASSIFIER_OF = {"stacked_mnist": "mnist"}
# Splits of the classifier score (Salimans et al. report 10).
SCORE_SPLITS = 10
# Minutes the default training takes on 2 CPU cores, announced before a run builds a
# classifier itself (tools/train_classifier.py reports the time it took).
BUILD_MINUTES = {"mnist": 4, "fashion_mnist": 4, "cifar10": 4}


@dataclasses.dataclass(frozen=True)
class Architecture:
  """A CNN: blocks of 3x3 convolutions (BatchNorm, ReLU) each ending in a 2x2 max
  pool, then a dense ReLU layer (the features), dropout and the logits.

  Attributes:
    blocks: (filters, convolutions) of each block.
    features: width of the penultimate (feature) layer.
    dropout: dropout rate after the feature layer (training only).
    epochs: default training epochs.
    learning_rate: Adam's initial rate, decayed to 0 by a cosine over the run.
    flip: random horizontal flips during training (natural images, not digits).
  """
  blocks: Tuple[Tuple[int, int], ...]
  features: int
  dropout: float
  epochs: int
  learning_rate: float = 2e-3
  flip: bool = False


# Chosen to train on 2 CPU cores in minutes (tools/train_classifier.py reports the
# accuracy they reach).
ARCHITECTURES: Dict[str, Architecture] = {
    "mnist": Architecture(blocks=((32, 1), (64, 1)), features=128, dropout=0.3,
                          epochs=6),
    "fashion_mnist": Architecture(blocks=((32, 1), (64, 1)), features=128,
                                  dropout=0.3, epochs=6),
    "cifar10": Architecture(blocks=((32, 1), (64, 1), (128, 1)), features=256,
                            dropout=0.0, epochs=6, flip=True),
}
# Other data sets: by the number of channels.
_BY_CHANNELS = {1: ARCHITECTURES["fashion_mnist"], 3: ARCHITECTURES["cifar10"]}


def classifier_dataset(dataset: str) -> str:
  """The data set whose classifier evaluates `dataset` ('stacked_mnist' -> 'mnist')."""
  return CLASSIFIER_OF.get(dataset, dataset)


def classifier_dir(directory: str = "") -> str:
  """The classifier cache: `directory` (`--eval.classifier_dir`), else
  $TF_STACKELBERG_CLASSIFIERS, else ~/.cache/tf_stackelberg/classifiers."""
  return os.path.expanduser(directory or os.environ.get(CLASSIFIER_DIR_ENV)
                            or DEFAULT_CLASSIFIER_DIR)


def classifier_path(dataset: str, directory: str = "") -> str:
  """`<cache>/<dataset>.keras` of the classifier that evaluates `dataset`."""
  return os.path.join(classifier_dir(directory), f"{classifier_dataset(dataset)}.keras")


def info_path(model_path: str) -> str:
  """The JSON beside a classifier file."""
  return os.path.splitext(model_path)[0] + ".json"


def build_command(dataset: str, directory: str = "") -> str:
  """The command that trains and caches the classifier that evaluates `dataset`."""
  command = f"python {TOOL} --dataset={classifier_dataset(dataset)}"
  if directory:
    command += f" --eval.classifier_dir={directory}"
  return command


def architecture_for(dataset: str, element_shape) -> Architecture:
  """The architecture of `dataset`, else the one for its number of channels."""
  if dataset in ARCHITECTURES:
    return ARCHITECTURES[dataset]
  channels = element_shape[-1]
  if channels not in _BY_CHANNELS:
    raise ConfigError(f"no classifier architecture for {dataset} images of shape "
                      f"{tuple(element_shape)} (1 or 3 channels)")
  return _BY_CHANNELS[channels]


def build_classifier(element_shape, num_classes: int, architecture: Architecture,
                     name: str = "classifier") -> keras.Model:
  """The CNN of `architecture`: images `[H, W, C]` in `[-1, 1]` -> logits `[C']`."""
  layers = keras.layers
  inputs = keras.Input(tuple(element_shape), name="images")
  x = inputs
  if architecture.flip:
    x = layers.RandomFlip("horizontal", name="flip")(x)  # identity at inference
  for b, (filters, convolutions) in enumerate(architecture.blocks):
    for c in range(convolutions):
      x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                        name=f"conv{b + 1}_{c + 1}")(x)
      x = layers.BatchNormalization(momentum=0.9, name=f"bn{b + 1}_{c + 1}")(x)
      x = layers.ReLU()(x)
    x = layers.MaxPooling2D(name=f"pool{b + 1}")(x)
  x = layers.Flatten()(x)
  x = layers.Dense(architecture.features, activation="relu", name=FEATURES_LAYER)(x)
  x = layers.Dropout(architecture.dropout)(x)
  logits = layers.Dense(num_classes, name="logits")(x)
  return keras.Model(inputs, logits, name=name)


def _predict(model, images, batch_size=1000):
  """Logits of `images` batch by batch, as NumPy."""
  call = tf.function(lambda x: model(x, training=False), autograph=False)
  return np.concatenate([call(images[i:i + batch_size]).numpy()
                         for i in range(0, len(images), batch_size)])


def train_classifier(data, epochs: Optional[int] = None, batch_size: int = 128,
                     seed: int = 0, train_examples: int = 0, verbose: int = 2,
                     callbacks=()) -> Tuple[keras.Model, Dict[str, Any]]:
  """Trains the evaluation classifier of `data` on its training split.

  Args:
    data: an `ImageData` with class labels.
    epochs: passes over the training examples (default: the architecture's).
    batch_size: examples per step.
    seed: seeds the weights, the example order and `train_examples`' subset.
    train_examples: train on this many examples drawn from the split (0: all).
    verbose: Keras' `fit` verbosity.
    callbacks: Keras callbacks of the training (progress lines).

  Returns:
    (model, report): the Keras model (logits) and a JSON-able report with the test
    accuracy, the classifier score of the real test images (mean and std over
    `SCORE_SPLITS` splits), the training time and what it was trained on.
  """
  if data.num_classes < 2:
    raise ConfigError(f"{data.name} has no class labels to train a classifier on")
  architecture = architecture_for(data.name, data.element_shape)
  epochs = int(epochs or architecture.epochs)
  keras.utils.set_random_seed(seed)
  x, y = data.examples("train", train_examples or None, seed=[seed, 11])
  x_test, y_test = data.examples("test")
  steps = epochs * (len(x) // batch_size)
  model = build_classifier(data.element_shape, data.num_classes, architecture,
                           name=f"{data.name}_classifier")
  schedule = keras.optimizers.schedules.CosineDecay(architecture.learning_rate,
                                                    max(1, steps))
  model.compile(keras.optimizers.Adam(schedule),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  start = time.time()
  model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose,
            callbacks=list(callbacks))
  seconds = time.time() - start
  logits = _predict(model, x_test)
  accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
  score, score_std = image_metrics.classifier_score_splits(
      logits, min(SCORE_SPLITS, len(logits)))
  report = {
      "dataset": data.name,
      "description": data.description,
      "test_accuracy": accuracy,
      "real_classifier_score": score,
      "real_classifier_score_std": score_std,
      "score_splits": min(SCORE_SPLITS, len(logits)),
      "test_examples": len(x_test),
      "train_examples": len(x),
      "epochs": epochs,
      "batch_size": batch_size,
      "seed": seed,
      "train_seconds": round(seconds, 1),
      "architecture": dataclasses.asdict(architecture),
      "class_names": list(data.class_names),
      "date": datetime.datetime.now().isoformat(timespec="seconds"),
      "tensorflow": tf.__version__,
      "keras": keras.__version__,
  }
  return model, report


def save_classifier(model: keras.Model, report: Dict[str, Any], path: str,
                    flag: str = "--output") -> str:
  """Writes the model to `path` (`.keras`) and the report beside it (`.json`), each
  whole or not at all; returns `path`. `flag` is the setting named in errors."""
  if not path.endswith(".keras"):
    raise ConfigError(f"{flag}: a classifier file must end in .keras, got {path}")
  directory = os.path.dirname(os.path.abspath(path))
  files.check_writable_directory(directory, flag)
  os.makedirs(directory, exist_ok=True)
  tmp = f"{path[:-len('.keras')]}.tmp-{uuid.uuid4().hex[:8]}.keras"
  try:
    with files.storage_errors(path):
      model.save(tmp)
      os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  files.write_json(info_path(path), report)
  return path


def _check_record(path, dataset, model, class_names, command):
  """The report beside the classifier `path` ({} when there is none), checked to be
  that of a classifier of `dataset`.

  A classifier of another data set of the same image shape and number of classes
  (MNIST's as `fashion_mnist.keras`) would score every sample with the wrong
  classes, so the record must name `dataset`. The model's own name
  (`<dataset>_classifier`, given by `build_classifier`) is checked too, which also
  catches a model file copied without its record. A record written before it named
  its data set is checked by its class names, when the data set's are known.

  Raises:
    ConfigError: the record is not valid JSON or not an object, or the model or the
      record belongs to another data set.
  """
  expected = classifier_dataset(dataset)
  owner = model.name[:-len("_classifier")] if model.name.endswith("_classifier") else ""
  if owner and owner != expected:
    raise ConfigError(f"{path} is a classifier of {owner}, not of {expected} (its "
                      f"model is named {model.name}); move it away and build the "
                      f"{expected} classifier with: {command}")
  record = info_path(path)
  if not os.path.isfile(record):
    return {}
  try:
    report = files.read_json(record)
  except (ValueError, UnicodeDecodeError) as e:
    raise ConfigError(f"{record} is damaged (not valid JSON); rebuild the classifier "
                      f"with: {command}") from e
  if not isinstance(report, dict):
    raise ConfigError(f"{record} is damaged (a JSON {type(report).__name__}, not the "
                      f"classifier's record); rebuild the classifier with: {command}")
  if "dataset" in report:
    if report["dataset"] != expected:
      raise ConfigError(f"{record} records a classifier of {report['dataset']!r}, not "
                        f"of {expected}; move {path} and {record} away and build the "
                        f"{expected} classifier with: {command}")
  elif class_names and isinstance(report.get("class_names"), list) and (
      report["class_names"] != list(class_names)):
    raise ConfigError(f"{record} records the classes of another data set than "
                      f"{expected} ({', '.join(map(str, report['class_names'][:3]))}, "
                      f"...); move {path} and {record} away and build the {expected} "
                      f"classifier with: {command}")
  return report


def load_classifier(dataset: str, directory: str = "", path: str = "",
                    class_names=()) -> FeatureNetwork:
  """The cached classifier that evaluates `dataset` as a `FeatureNetwork` (logits and
  the 'features' layer's output).

  Args:
    dataset: the data set being evaluated ('stacked_mnist' loads 'mnist').
    directory: `--eval.classifier_dir` ('' for the default cache).
    path: a classifier file instead of the cache.
    class_names: the data set's classes, to check a record that does not name its
      data set against (empty: not checked).

  Raises:
    ConfigError: there is no classifier (the message names the command that builds
      it), it cannot be read, or it or its record (`<dataset>.json`) is damaged or
      belongs to another data set.
  """
  path = path or classifier_path(dataset, directory)
  command = build_command(dataset, directory)
  if not os.path.isfile(path):
    raise ConfigError(
        f"no evaluation classifier for {classifier_dataset(dataset)}: {path} does "
        f"not exist (--eval.classifier_dir). Build it once with: {command}")
  try:
    model = keras.models.load_model(path, compile=False)
    features = model.get_layer(FEATURES_LAYER).output
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f"cannot read the evaluation classifier {path} "
                      f"({type(e).__name__}: {str(e).strip()[:200]}); rebuild it with: "
                      f"{command}") from e
  report = _check_record(path, dataset, model, class_names, command)
  both = keras.Model(model.inputs, [model.outputs[0], features],
                     name=f"{model.name}_with_features")
  info = {"path": path}
  info.update({k: report[k] for k in ("description", "test_accuracy",
                                      "real_classifier_score", "date")
               if k in report})
  return FeatureNetwork(f"{classifier_dataset(dataset)} classifier", both,
                        from_logits=True, batch_size=1000, info=info)


class _EpochLines(keras.callbacks.Callback):
  """One line per epoch of a classifier's training: a long build shows progress."""

  def __init__(self, label, epochs):
    super().__init__()
    self._label, self._epochs, self._began = label, epochs, None

  def on_epoch_begin(self, epoch, logs=None):
    self._began = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    accuracy = (logs or {}).get("accuracy")
    shown = f", training accuracy {100 * float(accuracy):.1f}%" if accuracy else ""
    print(f"  {self._label} classifier: epoch {epoch + 1}/{self._epochs} done in "
          f"{time.perf_counter() - self._began:.0f} s{shown}", flush=True)


def build_and_save(data, path: str, flag: str = "--eval.classifier_dir",
                   **train_args) -> Dict[str, Any]:
  """Trains the classifier of `data` (`train_classifier`, with `train_args`) and
  saves it to `path` with its report beside it; returns the report.

  The destination is checked before the training (`StorageError` naming `flag` if it
  cannot be written), so that minutes of work are never lost to it.
  """
  if not path.endswith(".keras"):
    raise ConfigError(f"{flag}: a classifier file must end in .keras, got {path}")
  files.check_writable_directory(os.path.dirname(os.path.abspath(path)), flag)
  model, report = train_classifier(data, **train_args)
  save_classifier(model, report, path, flag)
  return report


def _image_data_of(dataset: str, config):
  """The data set `dataset` read as `config` reads data (its classifier's data)."""
  from tf_stackelberg.data.registry import DATASETS  # pylint: disable=import-outside-toplevel
  return DATASETS.get(dataset)(config.replace(**{"data.dataset": dataset}).data)


def classifier_for(data_source, config) -> FeatureNetwork:
  """The classifier that evaluates `data_source`, trained and cached first when the
  cache (`--eval.classifier_dir`) has none, exactly where
  `tools/train_classifier.py` would have put it.

  A build announces itself with the time it takes and prints a line per epoch; its
  data comes from where training finds it (`--data.*`). Later runs load the cached
  file.

  Raises:
    ConfigError: the cached classifier is damaged or another data set's (nothing is
      replaced: the message says what to do), or the data set has no architecture.
    DataError: the classifier's data cannot be read.
    StorageError: the cache cannot be written (checked before the training).
  """
  directory = config.eval.classifier_dir
  dataset = classifier_dataset(data_source.name)
  path = classifier_path(data_source.name, directory)
  if not os.path.isfile(path):
    data = (data_source if data_source.name == dataset
            else _image_data_of(dataset, config))
    minutes = BUILD_MINUTES.get(dataset)
    took = (f"about {minutes} min on 2 CPU cores" if minutes else
            f"{data.num_examples('train')} training images: minutes to hours on a CPU")
    print(f"No evaluation classifier for {dataset} in {os.path.dirname(path)}: "
          f"training it now, once ({took}); later runs reuse {path}. To build it "
          f"ahead of time: {build_command(dataset, directory)}", flush=True)
    epochs = architecture_for(data.name, data.element_shape).epochs
    started = time.perf_counter()
    report = build_and_save(data, path, verbose=0,
                            callbacks=[_EpochLines(data.description, epochs)])
    print(f"Saved the {data.description} classifier to {path}: test accuracy "
          f"{100 * report['test_accuracy']:.2f}%, built in "
          f"{time.perf_counter() - started:.0f} s.", flush=True)
  own_classes = data_source.class_names if data_source.name == dataset else ()
  return load_classifier(data_source.name, directory, class_names=own_classes)
