"""A run: the data, the built game, its evaluators and its checkpoint, for one
`Config`, restored from the model directory when it holds a checkpoint."""

import hashlib
import os

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.common import salts
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.game.builder import build_gan
from tf_stackelberg.training import checkpoints, run_settings

CHECKPOINT_SUBDIR = checkpoints.CHECKPOINT_SUBDIR


def seed_everything(config):
  """Same seed, same run: seeds Python/NumPy/TF and enables TF op determinism."""
  keras.utils.set_random_seed(config.seed)
  if config.runtime.deterministic:
    tf.config.experimental.enable_op_determinism()


def _adjusted_to(strategy, config):
  """`(config, replica_jit)`: `config` with what `strategy` supports, and whether each
  replica's gradients are compiled with XLA instead of the whole step.

  Measured with TF 2.21 / Keras 3.15 on logical CPU devices and with two workers on
  loopback: Keras' multi-step loop fails with an unfed placeholder inside the
  distributed iterator's cond, and an XLA cluster of the whole step cannot reach the
  variables of another logical device. With several replicas a run therefore takes
  one step per call, and `--runtime.jit_compile` compiles each replica's forward and
  backward pass, with the gradients applied outside (docs/design.md section 12.4).
  """
  runtime, trainer = config.runtime, config.trainer
  if strategy.num_replicas_in_sync == 1:
    return config, False
  replica_jit = runtime.jit_compile
  if replica_jit or trainer.steps_per_execution > 1:
    compiled = ("each replica's gradients compiled with XLA" if replica_jit
                else "no XLA")
    print(f"{strategy.num_replicas_in_sync} replicas: one step per call, {compiled} "
          "(what Keras supports with several replicas).", flush=True)
  return config.replace(**{"runtime.jit_compile": False,
                           "trainer.steps_per_execution": 1}), replica_jit


def _unwrapped(optimizer):
  """The optimizer a `LossScaleOptimizer` wraps, or `optimizer` itself."""
  return getattr(optimizer, "inner_optimizer", optimizer)


class _VariableSet(tf.Module):
  """Every variable of a Keras model (BatchNorm statistics included), by path.

  Keras 3 does not expose layers kept in Python lists to `tf.train.Checkpoint`, so
  the model's variables are listed explicitly instead of relying on its tracking.
  Paths must be distinct (a model whose sub-layers share a name would lose
  variables silently otherwise).
  """

  def __init__(self, model):
    super().__init__(name=model.name)
    self.by_path = {v.path.replace("/", "."): v for v in model.variables}
    if len(self.by_path) != len(model.variables):
      paths = [v.path for v in model.variables]
      repeated = sorted({p for p in paths if paths.count(p) > 1})
      raise ValueError(f"{model.name} has variables with the same path: {repeated}")


class Run:
  """A built model with its data, evaluators and checkpoint.

  Attributes:
    config: the `Config`.
    strategy: the `tf.distribute.Strategy` the model was built under.
    data: the `DataSource`.
    gan: the compiled `StackelbergGAN`.
    evaluators: the `Evaluator`s of `--eval.evaluators` (or the dataset's).
    manager: the `tf.train.CheckpointManager` of `model_dir/checkpoints`.
    trackables: the objects a checkpoint restores, by name.
  """

  def __init__(self, config, strategy, restore_dir=None):
    config, replica_jit = _adjusted_to(strategy, config)
    self.config = config
    self.strategy = strategy
    self.data = DATASETS.get(config.data.dataset)(config.data)
    self.data.check_batch_size(config.game.batch_size)  # before the model is built
    with strategy.scope():
      self.gan = build_gan(config, self.data.element_shape)
    self.gan.replica_jit_compile = replica_jit
    self.evaluators = evaluation.build_evaluators(config, self.data,
                                                  self.gan.num_generators, strategy)
    self.trackables = {
        "generator": _VariableSet(self.gan.generator),
        "discriminator": _VariableSet(self.gan.discriminator),
        # A float16 run's loss-scaling wrapper is not saved: its checkpoints hold
        # the same optimizer state as every other precision's.
        "g_optimizer": _unwrapped(self.gan.g_optimizer),
        "d_optimizer": _unwrapped(self.gan.d_optimizer)}
    if self.gan.ema_generator is not None:  # only then, so older checkpoints restore
      self.trackables["ema_generator"] = _VariableSet(self.gan.ema_generator)
    # Saved with the weights so that every checkpoint describes its run.
    self.checkpoint = tf.train.Checkpoint(**{
        checkpoints.SETTINGS_NAME: checkpoints.settings_variable(config.run_settings()),
        **self.trackables})
    self.checkpoint_dir = checkpoints.directory_of(config.model_dir)
    # A multi-worker run's other workers restore the chief's checkpoints and save
    # their own elsewhere.
    self.restore_dir = restore_dir or self.checkpoint_dir
    self._manager = None
    variables = self.gan.trainable_variables

    def all_finite():
      return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables])

    # One scalar to the host instead of every weight. No control flow to convert;
    # AutoGraph would only warn that it cannot read a lambda's source.
    self._all_finite = tf.function(all_finite, autograph=False)

  @property
  def step(self):
    return int(self.gan.step.numpy())

  def weights_digest(self):
    """SHA-256 (16 hex digits) of every variable of both players and the EMA
    generator, BatchNorm statistics included: equal digests, equal models (the
    workers of a multi-worker run print theirs at the end)."""
    digest = hashlib.sha256()
    for name in sorted(k for k in self.trackables if not k.endswith("optimizer")):
      for path, variable in sorted(self.trackables[name].by_path.items()):
        digest.update(path.encode())
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()[:16]

  def weights_finite(self):
    """Whether every trainable weight is finite (checked in one compiled call)."""
    return bool(self._all_finite())

  @property
  def manager(self):
    # Made on first use: it reads the state file, which `restore` may repair first.
    if self._manager is None:
      self._manager = tf.train.CheckpointManager(
          self.checkpoint, self.checkpoint_dir,
          max_to_keep=self.config.trainer.keep_checkpoints)
    return self._manager

  def _restore_from(self, prefix):
    """Restores every object from `prefix` (`ConfigError` if they do not fit)."""
    # A new `tf.train.Checkpoint` per attempt keeps nothing of a failed one, and
    # without the settings variable it restores checkpoints written before it.
    try:
      status = tf.train.Checkpoint(**self.trackables).restore(prefix)
      status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:  # objects or shapes of another model
      raise ConfigError(f"checkpoint {prefix} does not fit the model of these "
                        f"settings ({str(e).strip().splitlines()[0][:200]})") from e
    status.expect_partial()  # the stored settings are read on their own

  def restore(self, require=False, repair=None):
    """Restores the newest checkpoint that restores; returns its step (0 if there is
    none).

    Checkpoints are found from the state file and the `ckpt-N.index` files on disk.
    A damaged one is skipped for the next older one, with one line each.

    Args:
      require: a checkpoint is required (`ConfigError` without one).
      repair: move skipped checkpoints into `checkpoints/damaged/` and rewrite the
        state file; default: in train mode (the other modes leave the directory as
        it is).

    Raises:
      ConfigError: no checkpoint (with `require`), none restores, or one stores
        other run-defining settings or does not fit the model.
    """
    repair = self.config.mode == "train" if repair is None else repair
    repair = repair and self.restore_dir == self.checkpoint_dir  # never the chief's
    try:
      restored = checkpoints.restore_newest(
          self.restore_dir, self._restore_from,
          lambda prefix, stored: run_settings.check_stored(self.config, prefix, stored),
          repair=repair, keep=self.config.trainer.keep_checkpoints)
    except checkpoints.NoUsableCheckpointError:
      raise  # its message says what failed for each and what to try; nothing moved
    if restored is None:
      if require:
        raise ConfigError(f"--model_dir={self.config.model_dir} holds no checkpoint "
                          "to load")
      return 0
    name = os.path.basename(restored.prefix)
    damaged = os.path.join(self.checkpoint_dir, checkpoints.DAMAGED_SUBDIR)
    for prefix, reason in restored.skipped:
      moved = f"; moved its files to {damaged}/" if repair else ""
      print(f"Skipped checkpoint {prefix}: {reason}; restored {name} (step "
            f"{self.step}){moved}.", flush=True)
    if restored.rebuilt_state:
      names = [os.path.basename(p) for p in reversed(restored.found)]
      found = (", ".join(names) if len(names) <= 4 else
               f"{len(names)} checkpoints, {names[0]} to {names[-1]},")
      rebuilt = " and rebuilt the state file" if repair else ""
      print(f"No checkpoint state file in {self.checkpoint_dir} (or it lists none): "
            f"found {found} on disk; restored {name} (step {self.step}){rebuilt}.",
            flush=True)
    if repair:
      self._manager = None  # to read the repaired state file
    return self.step

  def checkpoint_prefixes(self):
    """The checkpoints of the run directory, newest first."""
    return checkpoints.find(self.checkpoint_dir)[0]

  def restore_prefix(self, prefix):
    """Restores the checkpoint `prefix` (`ConfigError` if it stores other settings or
    does not fit); returns its step."""
    run_settings.check_stored(self.config, prefix, checkpoints.read_settings(prefix))
    self._restore_from(prefix)
    return self.step

  def evaluate(self):
    """Runs the evaluators on fresh model samples; {evaluator: {name: value}}."""
    seed = tf.constant([self.config.seed, salts.EVALUATION], tf.int64)
    return evaluation.run_evaluators(self.evaluators, self.gan.sample, seed, self.step)
