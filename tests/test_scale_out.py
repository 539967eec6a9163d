"""Scale-out in one process: strategy choice and refusals, per-pipeline input shares,
mixed precision and synchronised BatchNorm (docs/design.md section 12).

The multi-device and multi-worker runs need their devices configured before TensorFlow
starts, so they run in subprocesses (tests/test_replicas.py).
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config
from tf_stackelberg.data.datasets.stacked_mnist import StackedMnist
from tf_stackelberg.data.images import ImageData
from tf_stackelberg.data.mixtures import MixtureData, ring
from tf_stackelberg.game.builder import build_gan
from tf_stackelberg.models.layer_options import layer_options
from tf_stackelberg.training import input as input_lib
from tf_stackelberg.training import strategy as strategy_lib
from tf_stackelberg.training.run import Run, seed_everything

SEED = 3
STEPS = 4


def _runtime(**changes):
  return Config().replace(**{f"runtime.{k}": v for k, v in changes.items()}).runtime


def _tiny_images(num=96, shape=(8, 8, 1)):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(num, *shape), dtype=np.uint8)
  return ImageData("tiny", (images, rng.integers(0, 10, num)), class_names=list("0123456789"))


def _sources():
  digits = _tiny_images(200, (28, 28, 1))
  return {"mixture": MixtureData(ring(), size=800, shuffle=True),
          "mixture_stream": MixtureData(ring(), size=0),
          "images": _tiny_images(),
          "stacked_mnist": StackedMnist(digits, size=300, test_size=50)}


# ----------------------------------------------------------------- strategies
def test_tpu_strategy_is_refused_without_a_tpu():
  """No TPU device and no --runtime.tpu: refused at once, without a network query."""
  assert not tf.config.list_physical_devices("TPU")
  with pytest.raises(ConfigError, match=r"--runtime.strategy=tpu: no TPU found on "
                     r"this host .* --runtime.tpu=NAME or grpc://HOST:PORT"):
    strategy_lib.make_strategy(_runtime(strategy="tpu"))


def test_multi_worker_needs_tf_config(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ConfigError, match="needs the cluster in the TF_CONFIG"):
    strategy_lib.make_strategy(_runtime(strategy="multi_worker"))


@pytest.mark.parametrize("text, message", [
    ("{not json", "TF_CONFIG is not JSON"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "TF_CONFIG is not a cluster"),
    (json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                 "task": {"type": "worker", "index": 2}}),
     "TF_CONFIG task index 2 is not one of the 2 worker addresses"),
])
def test_bad_tf_config_is_named(monkeypatch, text, message):
  monkeypatch.setenv("TF_CONFIG", text)
  with pytest.raises(ConfigError, match=message):
    strategy_lib.cluster_spec()


def test_single_process_is_chief():
  strategy = tf.distribute.get_strategy()
  assert strategy_lib.is_chief(strategy)
  assert strategy_lib.task_name(strategy) == ""


# ----------------------------------------------------------------- input shares
@pytest.mark.parametrize("source", ["mixture", "mixture_stream", "images",
                                    "stacked_mnist"])
@pytest.mark.parametrize("pipelines, replicas", [(1, 2), (2, 2), (2, 4), (4, 4)])
def test_pipeline_shares_make_up_the_global_batch(source, pipelines, replicas):
  """Each pipeline's per-replica batches, in replica order, are exactly the rows of
  the one-pipeline global batch of every step (from a resumed step too)."""
  data, global_batch = _sources()[source], 16
  whole = [b.numpy() for b in data.batches(global_batch, SEED, 5, STEPS)]
  per_replica = global_batch // replicas
  local = replicas // pipelines
  shares = []
  for pipeline in range(pipelines):
    context = tf.distribute.InputContext(pipelines, pipeline, replicas)
    elements = [b.numpy() for b in input_lib.pipeline_batches(
        data, global_batch, SEED, 5, STEPS, context)]
    assert len(elements) == STEPS * local
    assert all(e.shape == (per_replica, *data.element_shape) for e in elements)
    shares.append(elements)
  for step in range(STEPS):
    rows = [shares[p][step * local + r] for p in range(pipelines) for r in range(local)]
    np.testing.assert_array_equal(np.concatenate(rows), whole[step])


def test_a_share_gathers_only_its_own_images():
  data = _tiny_images()
  whole = next(iter(data.batches(16, SEED, 0, 1))).numpy()
  second = next(iter(data.batches(16, SEED, 0, 1, shard=(1, 4)))).numpy()
  np.testing.assert_array_equal(second, whole[4:8])


@pytest.mark.parametrize("shard, message", [((2, 2), "is not \\(index, count\\)"),
                                            ((0, 3), "does not split into 3")])
def test_bad_shard_is_refused(shard, message):
  with pytest.raises(ValueError, match=message):
    _tiny_images().batches(16, SEED, shard=shard)


def test_global_batch_must_split_over_replicas():
  class Replicas:
    num_replicas_in_sync = 3
  with pytest.raises(ConfigError, match="--game.batch_size=64 does not split evenly "
                     "over 3 replicas"):
    input_lib.check_global_batch(64, Replicas())


# ----------------------------------------------------------------- precision
def _conv_config(**changes):
  return Config().replace(**{
      "model_dir": "unused", "data.dataset": "cifar10", "model.generator": "dcgan",
      "model.discriminator": "dcgan", "model.num_generators": 2,
      "model.latent_dim": 8, "model.generator_channels": (8,),
      "model.discriminator_channels": (4, 8), "model.generator_base_size": 8,
      "loss.classifier_weight": 0.1, "game.batch_size": 8, **changes})


def _mlp_config(**changes):
  return Config().replace(**{"model_dir": "unused", "model.num_generators": 3,
                             **changes})


@pytest.mark.parametrize("make_config, shape", [(_mlp_config, (2,)),
                                                (_conv_config, (16, 16, 3))])
def test_mixed_precision_steps_stay_finite_in_float32(make_config, shape):
  """The models compute in 16 bits, the weights, samples, logits and losses stay
  float32, every step counts (float16's skipped updates included) and the losses
  stay within a few percent of the float32 game's."""
  losses = {}
  for name in ("float32", "mixed_bfloat16", "mixed_float16"):
    config = make_config(**{"runtime.precision": name, "runtime.jit_compile": False})
    seed_everything(config.replace(seed=0))
    gan = build_gan(config, shape)
    real = tf.random.stateless_uniform([STEPS, config.game.batch_size, *shape],
                                       [0, 1], -1, 1)
    history = gan.fit(tf.data.Dataset.from_tensor_slices(real), epochs=1,
                      steps_per_epoch=STEPS, verbose=0)
    losses[name] = history.history
    assert int(gan.step.numpy()) == STEPS
    assert all(w.dtype == "float32" for w in gan.generator.weights
               + gan.discriminator.weights)
    samples, _ = gan.sample(4, tf.constant([1, 2]))
    assert samples.dtype == tf.float32
    assert np.all(np.isfinite(samples.numpy()))
    assert gan.generator.layers[0].compute_dtype == (
        "float32" if name == "float32" else name.split("_")[1])
  for precision in ("mixed_bfloat16", "mixed_float16"):
    for key in ("g_loss", "d_loss"):
      ours, reference = losses[precision][key][-1], losses["float32"][key][-1]
      assert np.isfinite(ours)
      # 8 (bfloat16) or 11 (float16) significant bits: a few steps' losses agree
      # to about a percent.
      assert abs(ours - reference) <= 0.05 * abs(reference) + 0.02, (
          precision, key, ours, reference)


def test_float16_checkpoints_hold_the_plain_optimizer(tmp_path):
  """A float16 run saves the optimizer state of every other precision: a float32
  run restores it."""
  config = _mlp_config(**{"model_dir": str(tmp_path), "runtime.precision": "mixed_float16"})
  strategy = tf.distribute.get_strategy()
  run = Run(config.validate(), strategy)
  assert isinstance(run.gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
  run.manager.save(checkpoint_number=0)
  other = Run(config.replace(**{"runtime.precision": "float32"}).validate(), strategy)
  assert other.restore(require=True) == 0


def test_layer_options_scope_is_restored():
  before = keras.config.dtype_policy().name
  with layer_options("mixed_bfloat16", synchronized_batch_norm=True):
    inside = keras.layers.Dense(2)
    from tf_stackelberg.models import conv  # pylint: disable=import-outside-toplevel
    norm = conv.batch_norm("bn")
  assert inside.dtype_policy.name == "mixed_bfloat16"
  assert norm.synchronized
  assert keras.config.dtype_policy().name == before
  assert not conv.batch_norm("bn2").synchronized
  with pytest.raises(ValueError, match="precision must be one of"):
    with layer_options("float8"):
      pass
