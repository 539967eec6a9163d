"""SavedModel export of a trained generator ensemble for serving.

The exported module has two serving signatures:

* `generate(z, k)`: z float32 `[N, latent_dim]`, k int32 `[N]` -> {'samples': `[N, D]`}:
  the output of generator k[i] at latent z[i].
* `sample(n, seed)`: n int32 scalar, seed int64 `[2]` (stateless) ->
  {'samples': `[n, D]`, 'generator': int32 `[n]`}: the generator index is drawn
  uniformly and z from the model's latent prior p0 (`--model.latent_distribution`),
  exactly as `StackelbergGAN.sample`; `generate` expects latents of the same prior.

`--mode=export` adds `mcmc_sample(n, steps, seed)` (see `mcmc_endpoint`).

Example:
  loaded = tf.saved_model.load(export_dir)
  out = loaded.signatures["sample"](n=tf.constant(100), seed=tf.constant([0, 1], tf.int64))
  out["samples"], out["generator"]
"""


import keras
import tensorflow as tf

from tf_stackelberg.common import files
from tf_stackelberg.common.errors import ConfigError

SIGNATURES = ("generate", "sample")


class ExportError(ConfigError):
  """The export destination cannot be used; the message names the flag."""


def check_destination(export_dir):
  """Checks, before any work, that `export_dir` can be written.

  Raises:
    ExportError: `export_dir` exists (an export is never replaced) or its parent is
      a file.
    StorageError: its parent directory cannot be written.
  """
  if tf.io.gfile.exists(export_dir):
    what = "a directory" if tf.io.gfile.isdir(export_dir) else "a file"
    raise ExportError(f"--export_dir={export_dir} already exists ({what}); an export "
                      "never replaces anything: choose a directory that does not "
                      f"exist, e.g. --export_dir={files.free_name(export_dir)}")
  files.check_writable_directory(export_dir, "--export_dir")


def export_gan(gan, export_dir, extra_endpoints=None, tracked=()):
  """Writes `gan`'s generator (and discriminator) as a SavedModel at `export_dir`.

  Args:
    gan: a built `StackelbergGAN`.
    export_dir: destination; must not exist yet (an earlier export is never replaced).
    extra_endpoints: optional dict name -> (fn, input_signature) of further endpoints.
    tracked: further Keras models whose variables the extra endpoints read.

  Returns:
    `export_dir`.
  """
  check_destination(export_dir)
  latent = gan.latent_dim

  def generate(z, k):
    return {"samples": gan.generate(z, k)}

  def sample(n, seed):
    samples, k = gan.sample(n, seed)
    return {"samples": samples, "generator": k}

  archive = keras.export.ExportArchive()
  archive.track(gan.generator)
  if gan.ema_generator is not None:  # `generate` and `sample` use it
    archive.track(gan.ema_generator)
  archive.track(gan.discriminator)
  for model in tracked:
    archive.track(model)
  archive.add_endpoint("generate", generate, input_signature=[
      tf.TensorSpec([None, latent], tf.float32, name="z"),
      tf.TensorSpec([None], tf.int32, name="k")])
  archive.add_endpoint("sample", sample, input_signature=[
      tf.TensorSpec([], tf.int32, name="n"),
      tf.TensorSpec([2], tf.int64, name="seed")])
  for name, (fn, signature) in (extra_endpoints or {}).items():
    archive.add_endpoint(name, fn, input_signature=signature)
  # Written next to the destination and renamed, so a failed export leaves nothing.
  with files.staged_directory(export_dir, "--export_dir") as staging:
    with files.storage_errors(export_dir):
      archive.write_out(staging, verbose=False)
  return export_dir
