"""A run: the data, the built game, its evaluators and its checkpoint, for one
`Config`, restored from the model directory when it holds a checkpoint."""

import os

import keras
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.game.builder import build_gan

CHECKPOINT_SUBDIR = "checkpoints"
# Stateless seed salt of the evaluation samples (distinct from training streams).
EVAL_SALT = 7


def seed_everything(config):
  """Same seed, same run: seeds Python/NumPy/TF and enables TF op determinism."""
  keras.utils.set_random_seed(config.seed)
  if config.runtime.deterministic:
    tf.config.experimental.enable_op_determinism()


class _VariableSet(tf.Module):
  """Every variable of a Keras model (BatchNorm statistics included), by path.

  Keras 3 does not expose layers kept in Python lists to `tf.train.Checkpoint`, so
  the model's variables are listed explicitly instead of relying on its tracking.
  """

  def __init__(self, model):
    super().__init__(name=model.name)
    self.by_path = {v.path.replace("/", "."): v for v in model.variables}


class Run:
  """A built model with its data, evaluators and checkpoint.

  Attributes:
    config: the `Config`.
    strategy: the `tf.distribute.Strategy` the model was built under.
    data: the `DataSource`.
    gan: the compiled `StackelbergGAN`.
    evaluators: the `Evaluator`s of `--eval.evaluators` (or the dataset's).
    manager: the `tf.train.CheckpointManager` of `model_dir/checkpoints`.
  """

  def __init__(self, config, strategy):
    runtime, trainer = config.runtime, config.trainer
    if runtime.cpu_devices > 1 and (runtime.jit_compile or trainer.steps_per_execution > 1):
      # Measured with TF 2.21 / Keras 3.15 on logical CPU devices: XLA clusters cannot
      # reach the variables of the other logical device, and Keras' multi-step loop
      # fails with an unfed placeholder inside the distributed iterator's cond. The
      # distributed test path therefore runs one uncompiled step per call.
      print("--runtime.cpu_devices > 1: training with --runtime.jit_compile=false and "
            "--trainer.steps_per_execution=1 (logical CPU devices support no more).",
            flush=True)
      config = config.replace(**{"runtime.jit_compile": False,
                                 "trainer.steps_per_execution": 1})
    self.config = config
    self.strategy = strategy
    self.data = DATASETS.get(config.data.dataset)(config.data)
    with strategy.scope():
      self.gan = build_gan(config, self.data.element_shape)
    self.evaluators = evaluation.build_evaluators(config, self.data,
                                                  self.gan.num_generators)
    self.checkpoint = tf.train.Checkpoint(
        generator=_VariableSet(self.gan.generator),
        discriminator=_VariableSet(self.gan.discriminator),
        g_optimizer=self.gan.g_optimizer, d_optimizer=self.gan.d_optimizer)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, os.path.join(config.model_dir, CHECKPOINT_SUBDIR),
        max_to_keep=config.trainer.keep_checkpoints)
    variables = self.gan.trainable_variables
    # One scalar to the host instead of every weight.
    self._all_finite = tf.function(lambda: tf.reduce_all(
        [tf.reduce_all(tf.math.is_finite(v)) for v in variables]))

  @property
  def step(self):
    return int(self.gan.step.numpy())

  def weights_finite(self):
    """Whether every trainable weight is finite (checked in one compiled call)."""
    return bool(self._all_finite())

  def restore(self, require=False):
    """Restores the latest checkpoint; returns its step (0 if there is none)."""
    latest = self.manager.latest_checkpoint
    if latest is None:
      if require:
        raise ConfigError(f"--model_dir={self.config.model_dir} holds no checkpoint "
                          "to load")
      return 0
    self.checkpoint.restore(latest).assert_existing_objects_matched()
    return self.step

  def evaluate(self):
    """Runs the evaluators on fresh model samples; {evaluator: {name: value}}."""
    seed = tf.constant([self.config.seed, EVAL_SALT], tf.int64)
    return evaluation.run_evaluators(self.evaluators, self.gan.sample, seed, self.step)
