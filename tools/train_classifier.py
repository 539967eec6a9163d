r"""Trains the evaluation classifier of an image data set and caches it.

The `classifier` evaluator (FID, KID, classifier score and label histograms of model
samples, docs/design.md section 9) needs a classifier of the data set. A run builds
the one it needs the first time; this tool builds one ahead of time (`make
classifiers` builds all of them), or again. It trains the data set's small CNN
(`tf_stackelberg/evaluation/classifiers.py`) on the training split, reports its
accuracy on the test split and the classifier score of the real test images, and
writes

  <classifier dir>/<dataset>.keras   the model (images in [-1, 1] -> logits)
  <classifier dir>/<dataset>.json    accuracy, real-data score, data, date, versions

where the classifier dir is --eval.classifier_dir, else $TF_STACKELBERG_CLASSIFIERS,
else ~/.cache/tf_stackelberg/classifiers (--output names another file). Data comes
from where training finds it (--data.source, --data.data_dir, --data.offline_dir).

  python tools/train_classifier.py --dataset=mnist
  python tools/train_classifier.py --dataset=cifar10 --epochs=8
  python tools/train_classifier.py --dataset=fashion_mnist --if_missing

Exit status: 0 on success, 1 when the destination cannot be written, 2 for bad flags
or missing data.
"""

import os
import sys

from tf_stackelberg.console import startup

startup.import_tensorflow_quietly()

# pylint: disable=wrong-import-position
from absl import app
from absl import flags
from absl import logging

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError, StorageError
from tf_stackelberg.config import flags as config_flags
from tf_stackelberg.data.images import ImageData
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.evaluation import classifiers
# pylint: enable=wrong-import-position

# Settings shared with the command line's flags.
SHARED_FLAGS = ("data.source", "data.data_dir", "data.offline_dir",
                "eval.classifier_dir")

flags.DEFINE_string("dataset", None, "Image data set (a name in the dataset "
                    "registry) whose classifier to train: mnist, fashion_mnist, "
                    "cifar10.")
flags.DEFINE_string("output", "", "Classifier file to write (.keras; default: "
                    "DATASET.keras in the classifier dir).")
flags.DEFINE_integer("epochs", 0, "Training epochs (0: the architecture's default).",
                     lower_bound=0)
flags.DEFINE_integer("batch_size", 128, "Examples per step.", lower_bound=1)
flags.DEFINE_integer("train_examples", 0, "Train on this many examples drawn from "
                     "the training split (0: all of it).", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of the weights and the example order.",
                     lower_bound=0)
flags.DEFINE_boolean("if_missing", False, "Keep an existing classifier file instead of "
                     "training it again (`make classifiers` builds only the missing "
                     "ones).")
flags.mark_flag_as_required("dataset")
config_flags.define_flags(only=SHARED_FLAGS)
FLAGS = flags.FLAGS


def check_dataset(dataset):
  """`ConfigError` unless `dataset` is registered and has a classifier of its own."""
  DATASETS.check(dataset, flag="--dataset")
  if dataset in classifiers.CLASSIFIER_OF:
    raise ConfigError(f"--dataset={dataset} is evaluated with the classifier of "
                      f"{classifiers.CLASSIFIER_OF[dataset]}: run "
                      f"{classifiers.build_command(dataset)}")


def load_data(dataset, config):
  """The `ImageData` of `dataset` (`ConfigError` for other data)."""
  data = DATASETS.get(dataset)(config.replace(**{"data.dataset": dataset}).data)
  if not isinstance(data, ImageData) or data.num_classes < 2:
    raise ConfigError(f"--dataset={dataset} is not a labelled image data set")
  return data


def run(argv=None):
  """Trains, reports and saves; returns the report (None when --if_missing kept an
  existing file)."""
  del argv
  config = config_flags.config_from_some_flags(SHARED_FLAGS)
  check_dataset(FLAGS.dataset)
  output = FLAGS.output or classifiers.classifier_path(FLAGS.dataset,
                                                       config.eval.classifier_dir)
  flag = "--output" if FLAGS.output else "--eval.classifier_dir"
  if not output.endswith(".keras"):
    raise ConfigError(f"--output={output} must end in .keras")
  if FLAGS.if_missing and os.path.isfile(output):
    print(f"{output} exists (--if_missing): kept as it is.", flush=True)
    return None
  # Checked before the data is read and the training starts, not after them.
  files.check_writable_directory(os.path.dirname(os.path.abspath(output)), flag)
  data = load_data(FLAGS.dataset, config)
  print(f"Training the {data.description} classifier on "
        f"{FLAGS.train_examples or data.num_examples('train')} training examples.",
        flush=True)
  report = classifiers.build_and_save(
      data, output, flag, epochs=FLAGS.epochs or None, batch_size=FLAGS.batch_size,
      seed=FLAGS.seed, train_examples=FLAGS.train_examples)
  print(f"{data.description}: test accuracy {100 * report['test_accuracy']:.2f}% "
        f"({report['test_examples']} test images), classifier score of the real test "
        f"images {report['real_classifier_score']:.3f} +- "
        f"{report['real_classifier_score_std']:.3f} ({report['score_splits']} "
        f"splits), trained {report['epochs']} epochs in {report['train_seconds']:.0f} "
        f"s.\nSaved {output} and {classifiers.info_path(output)}.", flush=True)
  return report


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # TFDS' INFO chatter
  try:
    run()
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except StorageError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
