"""Loss curves of one game trained on 1 replica and on 2 replicas (logical CPU
devices; uncompiled, with each replica's gradients compiled by XLA, and with
BatchNorm generators, their statistics per replica or synchronised), written as JSON: `python replica_curves.py STEPS OUT.json [SETTINGS.json]`.

Both games start from the same weights and read the same global batches and latents;
the per-step losses come from one-step epochs (the loss trackers reset every epoch).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=wrong-import-position
import numpy as np
import tensorflow as tf

from tf_stackelberg.config.sections import Config
from tf_stackelberg.training.input import training_batches
from tf_stackelberg.training.run import Run, seed_everything
from tf_stackelberg.training.strategy import make_strategy


def curve(config, strategy, steps):
  """Per-step losses and the final weights of `steps` steps under `strategy`."""
  seed_everything(config)
  run = Run(config, strategy)
  data = training_batches(strategy, run.data, config.game.batch_size, config.seed, 0,
                          steps)
  history = run.gan.fit(data, epochs=steps, steps_per_epoch=1, verbose=0)
  weights = np.concatenate([v.numpy().ravel() for v in run.gan.generator.weights
                            + run.gan.discriminator.weights])
  return {"losses": history.history, "weights": weights.tolist(),
          "replicas": strategy.num_replicas_in_sync}


def main(steps, out, settings):
  base = Config().replace(**{"model_dir": "unused", **settings})
  two = make_strategy(base.replace(**{"runtime.cpu_devices": 2,
                                      "runtime.strategy": "mirrored"}).runtime)
  # The one-replica game runs as the two-replica one must: uncompiled, one step a call.
  one_config = base.replace(**{"runtime.jit_compile": False,
                               "trainer.steps_per_execution": 1}).validate()
  # With --runtime.jit_compile each replica's gradients are one XLA computation.
  xla_config = base.replace(**{"runtime.jit_compile": True}).validate()
  # Generators with BatchNorm: per-replica statistics, or synchronised ones.
  bn_config = one_config.replace(**{"model.generator_batchnorm": True,
                                   "model.generator_hidden": (32, 32)})
  sync_config = bn_config.replace(**{"runtime.sync_batch_norm": True})
  bn_steps = max(1, steps // 10)
  results = {"one": curve(one_config, tf.distribute.get_strategy(), steps),
             "two": curve(one_config, two, steps),
             "two_xla": curve(xla_config, two, max(1, steps // 2)),
             "one_bn": curve(bn_config, tf.distribute.get_strategy(), bn_steps),
             "two_bn": curve(bn_config, two, bn_steps),
             "two_bn_sync": curve(sync_config, two, bn_steps)}
  with open(out, "w") as f:
    json.dump(results, f)


if __name__ == "__main__":
  main(int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
