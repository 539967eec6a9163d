"""The classifier evaluator on one device and with its batches shared by 2 replicas
(logical CPU devices), written as JSON: `python replica_evaluation.py OUT.json`.

The GAN is a small untrained DCGAN built under the 2-replica strategy, the network a
fixed random convolutional classifier; 70 samples in batches of 16 leave a short last
batch and an incomplete group of replicas.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.config.sections import Config
from tf_stackelberg.evaluation.evaluators.classifier import FeatureEvaluator
from tf_stackelberg.evaluation.networks import FeatureNetwork
from tf_stackelberg.game.builder import build_gan
from tf_stackelberg.training.strategy import make_strategy

SHAPE = (16, 16, 3)


def network():
  keras.utils.set_random_seed(1)
  inputs = keras.Input(SHAPE)
  features = keras.layers.GlobalAveragePooling2D()(
      keras.layers.Conv2D(6, 3, activation="relu")(inputs))
  logits = keras.layers.Dense(4)(features)
  return FeatureNetwork("random", keras.Model(inputs, [logits, features]), batch_size=16)


def main(out):
  config = Config().replace(**{
      "model_dir": "unused", "model.generator": "dcgan", "model.discriminator": "dcgan",
      "model.num_generators": 3, "model.latent_dim": 8, "model.generator_channels": (8,),
      "model.discriminator_channels": (4, 8), "model.generator_base_size": 8,
      "runtime.cpu_devices": 2, "runtime.strategy": "mirrored"})
  strategy = make_strategy(config.runtime)
  keras.utils.set_random_seed(0)
  with strategy.scope():
    gan = build_gan(config, SHAPE)
  real = np.random.default_rng(0).uniform(-1, 1, (40, *SHAPE)).astype(np.float32)
  results = {}
  for name, used in (("one", None), ("two", strategy)):
    evaluator = FeatureEvaluator(network(), real, 3, num_samples=70,
                                 class_names=list("abcd"), kid_subset_size=20)
    evaluator.strategy = used
    outputs = dict(evaluator.evaluate(gan.sample, tf.constant([5, 6])))
    results[name] = {key: value for key, value in outputs.items()
                     if isinstance(value, (int, float, list))}
  with open(out, "w") as f:
    json.dump(results, f)


if __name__ == "__main__":
  main(sys.argv[1])
