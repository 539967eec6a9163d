"""A GAN trained elsewhere, for the latent samplers (docs/design.md section 14.5).

A generator `G: z [B, D] -> x [B, ...]` and a discriminator `D: x -> logit [B]` (or
`[B, 1]`), each a Keras model file (`.keras`, or a legacy `.h5`) or a SavedModel
directory with a `serving_default` signature (`tf.saved_model.save`,
`keras.Model.export`), plus the latent prior (`normal` or `uniform`) and size, make a
one-generator `LatentModel`; the data set (`--data.*`) supplies the real examples that
calibrate the logit and that the evaluators compare against.

Every check runs before any sampling, each failing with a one-line `ConfigError` that
names the flag and the file: a missing or unloadable file, a model of several inputs
or outputs, non-float inputs or outputs, a latent size the generator refuses, samples
of another shape than the data set's examples, and a discriminator that gives more
than one logit per sample.

Example (Python):

```python
gan = external.load_external_gan("g.keras", "d.keras", latent_dim=64,
                                 latent_prior="normal", element_shape=(28, 28, 1))
model = latent.latent_model(gan)             # a LatentModel, uncalibrated
result = sample_latents("wl", model, 1000, 640, tf.constant([0, 1]))
```

On the command line:

```none
python -m tf_stackelberg.main --mode=sample --data.dataset=mnist \\
    --sampling.generator_file=g.keras --sampling.discriminator_file=d.keras \\
    --sampling.latent_dim=64 --sampling.output_dir=samples_g
```
"""

import dataclasses
import os
from typing import Any, Callable, Optional, Tuple

import keras
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.models.latent_prior import get_latent_prior

GENERATOR_FLAG = "--sampling.generator_file"
DISCRIMINATOR_FLAG = "--sampling.discriminator_file"
LATENT_DIM_FLAG = "--sampling.latent_dim"
_PROBE_BATCH = 2  # rows of the probes (one row would hide a batch-axis mistake)


def _first_line(error):
  text = str(error).strip()
  return (text.splitlines()[0] if text else type(error).__name__)[:200]


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """One model file as a callable on one float tensor.

  Attributes:
    fn: `x -> y`, `x` cast to `input_dtype` first.
    input_dtype: the model's input dtype.
    input_shape: the input shape as far as the file states it (`None` entries
      unknown), or `None`.
    keras_model: the `keras.Model` of a Keras file (its variables can be
      trained), else `None`.
  """
  fn: Callable[[Any], Any]
  input_dtype: tf.DType
  input_shape: Optional[Tuple[Optional[int], ...]]
  keras_model: Optional[keras.Model] = None

  def __call__(self, x, training=False):
    x = tf.cast(x, self.input_dtype)
    if self.keras_model is not None:
      return self.keras_model(x, training=training)
    return self.fn(x)


def _check_float(dtype, flag, path, what):
  if not tf.as_dtype(dtype).is_floating:
    raise ConfigError(f"{flag}={path} has {tf.as_dtype(dtype).name} {what}; a float "
                      "dtype is needed")


def _load_saved_model(path, flag):
  try:
    loaded = tf.saved_model.load(path)
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f"{flag}={path} cannot be loaded as a SavedModel "
                      f"({_first_line(e)})") from e
  signature = getattr(loaded, "signatures", {}).get("serving_default")
  if signature is None:
    raise ConfigError(f"{flag}={path} is a SavedModel without a serving_default "
                      "signature")
  args, kwargs = signature.structured_input_signature
  specs = list(args) + list(kwargs.values())
  if len(specs) != 1:
    raise ConfigError(f"{flag}={path}: its serving signature takes {len(specs)} "
                      "inputs; one tensor is needed")
  outputs = signature.structured_outputs
  if isinstance(outputs, dict) and len(outputs) != 1:
    raise ConfigError(f"{flag}={path}: its serving signature has {len(outputs)} "
                      f"outputs ({', '.join(sorted(outputs))}); one is needed")
  spec = specs[0]
  _check_float(spec.dtype, flag, path, "inputs")
  input_name = next(iter(kwargs)) if kwargs else None

  def fn(x):
    out = signature(**{input_name: x}) if input_name else signature(x)
    return next(iter(out.values())) if isinstance(out, dict) else out
  shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
  # Keep the loaded object alive with the function that calls into it.
  fn.loaded = loaded
  return LoadedModel(fn, tf.as_dtype(spec.dtype), shape)


def _load_keras(path, flag):
  try:
    model = keras.saving.load_model(path, compile=False)
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f"{flag}={path} cannot be loaded as a Keras model "
                      f"({_first_line(e)})") from e
  inputs = getattr(model, "inputs", None) or []
  if len(inputs) > 1:
    raise ConfigError(f"{flag}={path} takes {len(inputs)} inputs; one tensor is needed")
  outputs = getattr(model, "outputs", None) or []
  if len(outputs) > 1:
    raise ConfigError(f"{flag}={path} has {len(outputs)} outputs; one is needed")
  dtype, shape = tf.float32, None
  if inputs:
    dtype = tf.as_dtype(inputs[0].dtype)
    shape = tuple(inputs[0].shape)
  _check_float(dtype, flag, path, "inputs")
  return LoadedModel(model, dtype, shape, keras_model=model)


def load_model_file(path, flag):
  """The model in `path` (a Keras file or a SavedModel directory) as a
  `LoadedModel`; `ConfigError` naming `flag` when it is missing or unusable."""
  if not tf.io.gfile.exists(path):
    raise ConfigError(f"{flag}={path}: no such file or directory")
  if tf.io.gfile.isdir(path):
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
      raise ConfigError(f"{flag}={path} is a directory without saved_model.pb (a "
                        "SavedModel is needed, or a .keras file)")
    return _load_saved_model(path, flag)
  return _load_keras(path, flag)


class ExternalDiscriminator:
  """A loaded discriminator with the call of the package's discriminators:
  `x -> (logits [B], None)` (no class head)."""

  def __init__(self, model: LoadedModel):
    self.model = model

  @property
  def trainable_variables(self):
    """The Keras model's trainable variables (none for a SavedModel)."""
    keras_model = self.model.keras_model
    return [] if keras_model is None else keras_model.trainable_variables

  def __call__(self, x, training=False):
    logits = self.model(x, training=training)
    return tf.reshape(logits, [tf.shape(logits)[0]]), None


class ExternalGAN:
  """A generator and a discriminator trained elsewhere, with the part of
  `StackelbergGAN`'s interface that calibration, fine-tuning and the latent samplers
  read: `generate`, `sample`, `discriminator`, `latent_dim`, `num_generators` (1),
  `latent_prior` and `generator_log_prior` (None).

  Args:
    generator: `LoadedModel` mapping `z [B, latent_dim]` to `x [B, ...]`.
    discriminator: `LoadedModel` mapping `x` to logits `[B]` or `[B, 1]`.
    latent_dim: D.
    latent_prior: `LatentPrior` or its name.
  """

  num_generators = 1
  generator_log_prior = None

  def __init__(self, generator, discriminator, latent_dim, latent_prior="normal"):
    self.generator = generator
    self.discriminator = ExternalDiscriminator(discriminator)
    self.latent_dim = int(latent_dim)
    self.latent_prior = get_latent_prior(latent_prior)

  def generate(self, z, k=None, training=False):
    """`G(z)` as float32 (`k` is ignored: one generator)."""
    del k
    return tf.cast(self.generator(z, training=training), tf.float32)

  def sample(self, num_samples, seed):
    """`num_samples` generator draws (z ~ p0) with a stateless seed `[2]`; returns
    `(samples, generator index)` (all zero)."""
    z_seed, _ = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    z = self.latent_prior.sample([num_samples, self.latent_dim], z_seed)
    return self.generate(z), tf.zeros([num_samples], tf.int32)


def _shown(shape):
  return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_gan(gan, element_shape, generator_file, discriminator_file, dataset=None):
  """Probes `gan` with a small batch; `ConfigError` naming the flag and the file when
  the latent size, the samples' shape or dtype, or the logits' shape do not fit."""
  d, batch = gan.latent_dim, _PROBE_BATCH
  stated = gan.generator.input_shape
  if stated is not None and (len(stated) != 2 or stated[-1] not in (None, d)):
    raise ConfigError(f"{LATENT_DIM_FLAG}={d} does not fit {GENERATOR_FLAG}="
                      f"{generator_file}, which takes latents of shape "
                      f"{_shown(stated)}")
  z = gan.latent_prior.sample([batch, d], tf.constant([0, 0], tf.int32))
  try:
    x = gan.generator(z)
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f"{LATENT_DIM_FLAG}={d} does not fit {GENERATOR_FLAG}="
                      f"{generator_file}: it refused latents of shape [{batch}, {d}] "
                      f"({_first_line(e)})") from e
  if not isinstance(x, tf.Tensor) or not hasattr(x, "dtype"):
    raise ConfigError(f"{GENERATOR_FLAG}={generator_file} returned "
                      f"{type(x).__name__}, not one tensor")
  _check_float(x.dtype, GENERATOR_FLAG, generator_file, "outputs")
  wanted = (batch,) + tuple(element_shape)
  if tuple(x.shape) != wanted:
    data = f"--data.dataset={dataset}" if dataset else "the data"
    raise ConfigError(f"{GENERATOR_FLAG}={generator_file} makes samples of shape "
                      f"{_shown(x.shape[1:])}, but {data} has examples of shape "
                      f"{_shown(element_shape)}")
  try:
    logits = gan.discriminator.model(x)
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f"{DISCRIMINATOR_FLAG}={discriminator_file} refused samples of "
                      f"shape {_shown(element_shape)} ({_first_line(e)})") from e
  if not isinstance(logits, tf.Tensor):
    raise ConfigError(f"{DISCRIMINATOR_FLAG}={discriminator_file} returned "
                      f"{type(logits).__name__}, not one tensor of logits")
  _check_float(logits.dtype, DISCRIMINATOR_FLAG, discriminator_file, "outputs")
  if tuple(logits.shape) not in ((batch,), (batch, 1)):
    raise ConfigError(f"{DISCRIMINATOR_FLAG}={discriminator_file} gives logits of "
                      f"shape {_shown(logits.shape)} for {batch} samples; one logit "
                      "per sample ([B] or [B, 1]) is needed")


def load_external_gan(generator_file, discriminator_file, latent_dim, latent_prior,
                      element_shape, dataset=None):
  """The checked `ExternalGAN` of two model files (see the module docstring).

  Args:
    generator_file: Keras file or SavedModel directory of `G`.
    discriminator_file: the same for `D`.
    latent_dim: D, the size of `z`.
    latent_prior: 'normal' or 'uniform' (or a `LatentPrior`).
    element_shape: the shape of one example of the data, e.g. `(28, 28, 1)`.
    dataset: the data set's name, for the messages.

  Raises:
    ConfigError: a file is missing or unusable, or a shape or dtype does not fit.
  """
  if int(latent_dim) < 1:
    raise ConfigError(f"{LATENT_DIM_FLAG} must be positive, got {latent_dim}")
  gan = ExternalGAN(load_model_file(generator_file, GENERATOR_FLAG),
                    load_model_file(discriminator_file, DISCRIMINATOR_FLAG),
                    latent_dim, latent_prior)
  check_gan(gan, element_shape, generator_file, discriminator_file, dataset)
  return gan


@dataclasses.dataclass
class ExternalRun:
  """What `--mode=sample` reads of a run, for a GAN trained elsewhere: the settings,
  the strategy, the data, the GAN and the evaluators (no checkpoint, no directory).
  """
  config: Any
  strategy: Any
  data: Any
  gan: ExternalGAN
  evaluators: list


def external_run(config, strategy):
  """The `ExternalRun` of `--sampling.generator_file` and `--sampling.discriminator_file`
  with the data set of `--data.*` (all checks done)."""
  sampling = config.sampling
  data = DATASETS.get(config.data.dataset)(config.data)
  gan = load_external_gan(sampling.generator_file, sampling.discriminator_file,
                          sampling.latent_dim, sampling.latent_prior,
                          data.element_shape, config.data.dataset)
  evaluators = evaluation.build_evaluators(config, data, gan.num_generators, strategy)
  return ExternalRun(config, strategy, data, gan, evaluators)
