"""Finds a dataset's data (TFDS cache, offline copy, or a TFDS download) and loads a
split into memory as uint8 arrays.

`--data.source` chooses where data comes from:

* `auto` (default): the TFDS dataset if it is already prepared in `--data.data_dir`,
  else the offline copy in `--data.offline_dir` (prepared into the cache on first use).
  Never touches the network: a missing dataset is an error that says where data was
  looked for and how to provide it (an offline `tfds.load` retries for minutes).
* `offline`: only the offline copy.
* `tfds`: `tfds.load` as usual, downloading and preparing the dataset if needed.
  Offline, TFDS retries every download for minutes; a download therefore starts only
  once its download host answered a TCP connection within `DOWNLOAD_PROBE_TIMEOUT_S`.
"""

import contextlib
import fcntl
import glob
import logging
import os
import sys
import time
import zipfile

from absl import logging as absl_logging
import numpy as np
import tensorflow as tf

from tf_stackelberg.common import files, reach
from tf_stackelberg.common.errors import (ConfigError, DataError, NetworkError,
                                          StorageError)

SOURCES = ("auto", "offline", "tfds")
# The default offline folder: `../shared/data` beside the project's root folder.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
DEFAULT_OFFLINE_DIR = os.path.join(os.path.dirname(_PROJECT_ROOT), "shared", "data")
OFFLINE_DIR_ENV = "TF_STACKELBERG_DATA"
#: (host, port) that must answer before tensorflow-datasets downloads anything: the
#: storage of its prepared datasets, which it also asks first.
DOWNLOAD_PROBE = ("storage.googleapis.com", 443)
DOWNLOAD_PROBE_TIMEOUT_S = 5.0


def _tfds():
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  return tfds


def data_dir(config):
  """The TFDS cache: `--data.data_dir`, else $TFDS_DATA_DIR, else ~/tensorflow_datasets.

  Raises:
    ConfigError: the path, or a folder on it, is an existing file.
  """
  if config.data_dir:
    path = os.path.expanduser(config.data_dir)
    named = f"--data.data_dir={path}"
  elif os.environ.get("TFDS_DATA_DIR"):
    path = os.path.expanduser(os.environ["TFDS_DATA_DIR"])
    named = f"$TFDS_DATA_DIR={path}"
  else:
    path = os.path.expanduser("~/tensorflow_datasets")
    named = f"{path} (the default of --data.data_dir)"
  _check_folder(path, named)
  return path


def _check_folder(path, named):
  """Raises `ConfigError` if `path` cannot be a folder: it, or a folder on it, is a
  file (TFDS would fail with a traceback when it creates it)."""
  existing = os.path.abspath(path)
  while not os.path.exists(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing)
  if os.path.exists(existing) and not os.path.isdir(existing):
    what = ("is a file" if existing == os.path.abspath(path)
            else f"is inside the file {existing}")
    raise ConfigError(f"{named} {what}, not a folder; give the path of a folder (it "
                      "is created if missing)")


def offline_dir(config):
  """The folder of offline copies: `--data.offline_dir`, else $TF_STACKELBERG_DATA,
  else `../shared/data` beside the project."""
  return os.path.expanduser(config.offline_dir or os.environ.get(OFFLINE_DIR_ENV)
                            or DEFAULT_OFFLINE_DIR)


class _UnpreparedFolderFilter(logging.Filter):
  """Drops TFDS's warning that a dataset folder has no dataset_info.json: asking an
  unprepared builder whether it is prepared logs it, right before it is prepared."""

  def filter(self, record):
    return not (record.msg == "Variant folder %s has no %s" and
                isinstance(record.args, tuple) and len(record.args) == 2 and
                record.args[1] == "dataset_info.json")


@contextlib.contextmanager
def _quiet_unprepared_folders():
  """Applies `_UnpreparedFolderFilter` to TFDS's (absl's) logger meanwhile."""
  logger = absl_logging.get_absl_logger()
  quiet = _UnpreparedFolderFilter()
  logger.addFilter(quiet)
  try:
    yield
  finally:
    logger.removeFilter(quiet)


def _offline_spec(name):
  from tf_stackelberg.data.offline import builders  # pylint: disable=import-outside-toplevel
  return builders.OFFLINE.get(name)


def _missing_offline_files(config, name):
  spec = _offline_spec(name)
  if spec is None:
    return None, []
  folder = os.path.join(offline_dir(config), spec[1])
  return folder, [f for f in spec[2] if not os.path.isfile(os.path.join(folder, f))]


@contextlib.contextmanager
def _preparation_lock(directory, name):
  """Holds an exclusive lock on `directory/.name.lock`: two runs that start together
  would otherwise prepare the same dataset into the same folder and break each other."""
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, f".{name}.lock"), "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def _offline_builder(config, name, announce=True):
  """The prepared offline builder of `name` (preparing it from the files once)."""
  builder_cls, folder_name, _ = _offline_spec(name)
  builder = builder_cls(data_dir=data_dir(config))
  if builder.is_prepared():
    return builder
  with _preparation_lock(data_dir(config), builder.name):
    builder = builder_cls(data_dir=data_dir(config))  # another run may have finished
    if not builder.is_prepared():
      _prepare(config, name, builder, os.path.join(offline_dir(config), folder_name),
               announce)
  return builder


def _prepare(config, name, builder, folder, announce):
  if announce:
    print(f"Preparing {name} from {folder} into {data_dir(config)} (once) ...",
          file=sys.stderr, flush=True)
  start = time.time()
  try:
    builder.download_and_prepare(download_config=_tfds().download.DownloadConfig(
        manual_dir=folder, try_download_gcs=False))
  except DataError:
    raise
  except (OSError, ValueError) as e:
    raise DataError(f"cannot prepare {name} from {folder} into "
                    f"{data_dir(config)}: {e}") from e
  if announce:
    print(f"Prepared {name} in {time.time() - start:.0f} s.", file=sys.stderr,
          flush=True)


def _not_found(config, name, tfds_name):
  """The `DataError` of a dataset that `--data.source` finds nowhere: where data was
  looked for, and how to provide it."""
  folder, missing = _missing_offline_files(config, name)
  looked = []
  if config.source == "auto":
    looked.append(f"no prepared TFDS dataset {tfds_name} in {data_dir(config)} "
                  "(--data.data_dir)")
  if folder is None:
    looked.append(f"{name} has no offline copy (there are offline copies of "
                  f"{', '.join(sorted(_offline_names()))} only)")
  else:
    looked.append(f"offline copy: {folder} lacks {', '.join(missing)} "
                  "(--data.offline_dir)")
  remedy = ("run with --data.source=tfds to download it through tensorflow-datasets "
            "(needs network)")
  if folder is not None:
    remedy += f", or put the files in {folder}"
  if config.source == "offline":
    remedy += (", or use --data.source=auto to read a TFDS dataset prepared in "
               f"{data_dir(config)}")
  return DataError(f"dataset {name} not found: {'; '.join(looked)}. To provide it, "
                   f"{remedy}.")


def _offline_names():
  from tf_stackelberg.data.offline import builders  # pylint: disable=import-outside-toplevel
  return builders.OFFLINE.keys()


def _prepared_versions(config, tfds_name):
  """Versions of `tfds_name` prepared in the data directory (looked up on disk, since
  constructing a builder creates its folder)."""
  pattern = os.path.join(data_dir(config), *tfds_name.split("/"), "*",
                         "dataset_info.json")
  return glob.glob(pattern)


def builder_for(config, name, tfds_name):
  """The prepared TFDS builder `--data.source` resolves to for dataset `name`.

  Args:
    config: the `DataConfig`.
    name: the project's dataset name ('mnist').
    tfds_name: the TFDS name ('mnist', 'imagenet_resized/32x32').

  Raises:
    ConfigError: the data directory is a file.
    DataError: nothing found (with where it looked and how to provide the data), or
      the offline files are damaged.
    NetworkError: `--data.source=tfds` must download, and the download host does not
      answer.
  """
  data_dir(config)  # a bad folder is named before anything else
  with _quiet_unprepared_folders():
    source = config.source
    if source == "tfds":
      return _tfds_builder(config, tfds_name)
    if source == "auto" and _prepared_versions(config, tfds_name):
      builder = _tfds().builder(tfds_name, data_dir=data_dir(config))
      if builder.is_prepared():
        return builder
    folder, missing = _missing_offline_files(config, name)
    if folder is None or missing:
      raise _not_found(config, name, tfds_name)
    return _offline_builder(config, name)


def _tfds_builder(config, tfds_name):
  """`tfds.builder(tfds_name)`, downloaded and prepared if it is not yet."""
  builder = _tfds().builder(tfds_name, data_dir=data_dir(config))
  if not builder.is_prepared():
    _check_download_host(config, tfds_name)
    print(f"Downloading and preparing {tfds_name} into {data_dir(config)} with "
          "tensorflow-datasets (once) ...", file=sys.stderr, flush=True)
    try:
      builder.download_and_prepare()
    except Exception as e:  # pylint: disable=broad-except
      # TFDS raises many types (checksum, quota, HTTP, manual-download errors); the
      # user needs the dataset, the directory and the reason in one line.
      reason = " ".join(str(e).split())[:500] or type(e).__name__
      raise DataError(f"--data.source=tfds: tensorflow-datasets could not download "
                      f"and prepare {tfds_name} into {data_dir(config)} "
                      f"(--data.data_dir): {type(e).__name__}: {reason}") from e
  return builder


def _check_download_host(config, tfds_name):
  """Raises `NetworkError` unless `DOWNLOAD_PROBE` accepts a TCP connection within
  `DOWNLOAD_PROBE_TIMEOUT_S` (offline, TFDS would retry for minutes)."""
  host, port = DOWNLOAD_PROBE
  timeout = DOWNLOAD_PROBE_TIMEOUT_S
  print(f"{tfds_name} is not prepared in {data_dir(config)}; checking that the "
        f"download host {host}:{port} answers (at most {timeout:g} s) ...",
        file=sys.stderr, flush=True)
  start = time.monotonic()
  reason = reach.probe(host, port, timeout)
  if reason:
    raise NetworkError(
        f"--data.source=tfds: tensorflow-datasets could not download and prepare "
        f"{tfds_name} into {data_dir(config)} (--data.data_dir): the download host "
        f"{host}:{port} does not answer ({reason}; tried for "
        f"{time.monotonic() - start:.1f} s). Connect this machine to the network, "
        f"or prepare {tfds_name} where there is one and copy its folder into "
        "--data.data_dir")


def _decoded_cache(builder, split, cache_key):
  """Where the decoded arrays of a split are kept (beside TFDS's own folders)."""
  return os.path.join(os.path.dirname(os.path.dirname(os.fspath(builder.data_dir))),
                      "tf_stackelberg_decoded", builder.name, str(builder.version),
                      f"{split}{cache_key}.npz")


def load_split(builder, split, preprocess=None, batch_size=1024, label_key="label",
               cache_key=""):
  """(images uint8 `[N, H, W, C]`, labels int64 `[N]` or None) of one split.

  The decoded arrays are kept in the data directory beside the prepared dataset
  (decoding 60,000 PNG files takes seconds; reading them back, a fraction of one);
  a builder with no `dataset_info.json` on disk (e.g. under
  `tfds.testing.mock_data`) is decoded every time. `cache_key` must change whenever
  `preprocess` does.

  Args:
    builder: a prepared TFDS builder.
    split: 'train' or 'test' (any TFDS split string).
    preprocess: optional `uint8 image [h, w, c] -> uint8 [H, W, C]` applied in the
      pipeline (e.g. the centre crop and resize of CelebA).
    batch_size: examples decoded per batch.
    label_key: feature holding the label, or None.
    cache_key: a name of `preprocess` for the decoded cache ('' without one).

  Raises:
    DataError: a record file of the prepared dataset is truncated or missing (the
      message names it and how to prepare the dataset again).
  """
  on_disk = os.path.isfile(os.path.join(os.fspath(builder.data_dir),
                                        "dataset_info.json"))
  cache = _decoded_cache(builder, split, cache_key) if on_disk else None
  if cache and os.path.exists(cache):
    try:
      with np.load(cache) as stored:
        return stored["images"], (stored["labels"] if label_key else None)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
      pass  # a damaged cache is rebuilt below
  try:
    images, labels = _decode_split(builder, split, preprocess, batch_size, label_key)
  except (tf.errors.DataLossError, tf.errors.NotFoundError,
          tf.errors.FailedPreconditionError) as e:
    # A truncated or missing record file (a copy or a preparation cut short).
    raise _damaged(builder, split, e) from None
  if cache is None:
    return images, labels
  try:
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    files.write_npz(cache, images=images, labels=labels if label_key else np.zeros(0))
  except (StorageError, OSError):
    pass  # a read-only data directory only costs the decoding next time
  return images, labels


def _damaged_file(builder, split):
  """(path, why) of the first record file of `split` that is missing, cut short or
  holds fewer examples than the dataset declares; None if all read whole."""
  info = builder.info.splits[split]
  folder = os.fspath(builder.data_dir)
  for name, declared in zip(info.filenames, info.shard_lengths):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
      return path, "missing"
    try:
      count = sum(1 for _ in tf.data.TFRecordDataset(path))
    except tf.errors.OpError as e:
      return path, _op_reason(e)
    if count != declared:
      return path, f"holds {count:,} of its {declared:,} examples"
  return None


def _op_reason(error):
  """The reason in a TensorFlow op error, without the op and function names."""
  message = getattr(error, "message", None) or str(error)
  return message.split(" [Op:")[0].split("}} ")[-1].replace("'", "").strip()


def _damaged(builder, split, error):
  """The `DataError` of a prepared dataset whose records fail to read."""
  folder = os.fspath(builder.data_dir)
  try:
    found = _damaged_file(builder, split)
  except (KeyError, ValueError, tf.errors.OpError):  # no usable split description
    found = None
  if found is None:
    found = f"a record file of split {split!r}", _op_reason(error)
  path, why = found
  return DataError(f"the prepared dataset {builder.name} in {folder} is damaged: "
                   f"{path}: {why}. Delete the folder {folder} and run again to "
                   "prepare it afresh (from the offline copy in --data.offline_dir, "
                   "or by tensorflow-datasets with --data.source=tfds)")


def _decode_split(builder, split, preprocess, batch_size, label_key):
  def select(example):
    image = example["image"]
    if preprocess is not None:
      image = preprocess(image)
    label = (tf.cast(example[label_key], tf.int64) if label_key
             else tf.constant(-1, tf.int64))
    return image, label

  dataset = builder.as_dataset(split=split, shuffle_files=False)
  count = int(dataset.cardinality())
  dataset = dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
  image_shape = dataset.element_spec[0].shape
  dataset = dataset.batch(batch_size).prefetch(2)
  if count > 0 and image_shape.is_fully_defined():
    # One array filled in place: ImageNet32's 3.9 GB are not held twice.
    images = np.empty((count, *image_shape), np.uint8)
    labels = np.empty(count, np.int64)
    filled = 0
    for image_batch, label_batch in dataset.as_numpy_iterator():
      n = len(image_batch)
      if filled + n > count:
        raise DataError(f"split {split!r} of {builder.name} in {builder.data_dir} "
                        f"holds more examples than the {count:,} it declares")
      images[filled:filled + n] = image_batch
      labels[filled:filled + n] = label_batch
      filled += n
    if filled != count:
      raise DataError(f"split {split!r} of {builder.name} in {builder.data_dir} "
                      f"holds {filled:,} examples, not the {count:,} it declares")
  else:
    image_list, label_list = [], []
    for image_batch, label_batch in dataset.as_numpy_iterator():
      image_list.append(image_batch)
      label_list.append(label_batch)
    if not image_list:
      raise DataError(f"split {split!r} of {builder.name} in {builder.data_dir} "
                      "is empty")
    images = np.concatenate(image_list).astype(np.uint8)
    labels = np.concatenate(label_list)
  return images, (labels if label_key else None)
