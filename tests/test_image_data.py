"""Tests of the image data: the offline copies of MNIST, Fashion-MNIST and CIFAR-10
read through their TFDS builders, the checks that refuse damaged files, the in-memory
pipelines batched statelessly in (seed, step), Stacked MNIST, and CelebA / ImageNet32
through `tfds.testing.mock_data`.

No test reaches the network: every test runs with Python sockets and TFDS's GCS access
replaced by a failure.

Preparing MNIST from its IDX files takes 20-40 s, so the real data is prepared once
per test session into a temporary data directory (`offline_data_dir`). Where the
user's TFDS cache already holds a prepared offline copy, its folder is linked in
instead, read-only. TF_STACKELBERG_FRESH_DATA=1 prepares everything afresh (as CI on
a clean machine does), CIFAR-10 included (about a minute more); without it, and with
no prepared CIFAR-10 in the cache, the real CIFAR-10 pipeline test is skipped:
preparation is then tested on a small zip of the same layout.
"""

import gzip
import io
import os
import socket
import struct
import zipfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

from conftest import FRESH_ENV, offline_config, run_main
from tf_stackelberg.common.errors import DataError
from tf_stackelberg.config.sections import DataConfig
from tf_stackelberg.data import idx, images as images_lib, tfds_loader
from tf_stackelberg.data.datasets import celeb_a as celeb_a_lib
from tf_stackelberg.data.datasets.stacked_mnist import StackedMnist, stack
from tf_stackelberg.data.images import ImageData, epoch_batches, to_uint8
from tf_stackelberg.data.offline import builders
from tf_stackelberg.data.registry import DATASETS

OFFLINE_DIR = tfds_loader.offline_dir(DataConfig())


def _refuse_network(*args, **kwargs):
  raise AssertionError(f"a test tried to reach the network: {args} {kwargs}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
  """Fails any attempt to open a connection or to read TFDS's GCS bucket."""
  for name in ("connect", "connect_ex"):
    monkeypatch.setattr(socket.socket, name, _refuse_network)
  monkeypatch.setattr(socket, "create_connection", _refuse_network)
  monkeypatch.setattr(socket, "getaddrinfo", _refuse_network)
  for name in ("exists", "download_gcs_folder", "download_gcs_dataset"):
    monkeypatch.setattr(gcs_utils, name, _refuse_network)


@pytest.fixture
def download_host_answers(monkeypatch):
  """The reachability check that precedes a TFDS download passes (without a
  connection); returns the names it was asked for."""
  asked = []
  monkeypatch.setattr(tfds_loader, "_check_download_host",
                      lambda config, tfds_name: asked.append(tfds_name))
  return asked


@pytest.fixture
def no_download(monkeypatch):
  """Fails the test if anything asks TFDS to download or prepare a dataset."""
  def refuse(*args, **kwargs):
    raise AssertionError("download_and_prepare was called")
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)
  monkeypatch.setattr(tfds, "load", refuse)


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="session")
def fashion_mnist(offline_data_dir):
  return DATASETS.get("fashion_mnist")(offline_config(offline_data_dir[0],
                                                      "fashion_mnist"))


def _row_keys(images):
  """A key per uint8 image: a random integer combination of its pixels, exact in
  float64 (below 2^20 * 255 * 12288 < 2^52)."""
  flat = images.reshape(len(images), -1).astype(np.float64)
  weights = np.random.RandomState(0).randint(1, 2**20, flat.shape[1]).astype(np.float64)
  return flat @ weights


def assert_same_examples(images, labels, expected_images, expected_labels):
  """The (image, label) pairs are those expected, in any order."""
  assert images.shape == expected_images.shape
  got = np.lexsort([labels, _row_keys(images)])
  want = np.lexsort([expected_labels, _row_keys(expected_images)])
  np.testing.assert_array_equal(images[got], expected_images[want])
  np.testing.assert_array_equal(labels[got], expected_labels[want])


def _idx_split(folder, split):
  images, labels = idx.read_split(*(os.path.join(OFFLINE_DIR, folder, f)
                                    for f in builders.IDX_FILES[split]))
  return images[..., None], labels.astype(np.int64)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_datasets_hold_the_offline_files(name, request):
  data = request.getfixturevalue(name)
  assert isinstance(data, ImageData) and data.element_shape == (28, 28, 1)
  assert data.num_classes == 10 and data.num_examples("train") == 60000
  for split, count in (("train", 60000), ("test", 10000)):
    images, labels = data.examples_uint8(split)
    assert images.shape == (count, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    per_class = np.bincount(labels, minlength=10)
    assert len(per_class) == 10 and per_class.sum() == count
    if name == "fashion_mnist":
      np.testing.assert_array_equal(per_class, count // 10)
    assert_same_examples(images, labels, *_idx_split(name, split))
  if name == "mnist":  # the canonical counts of MNIST
    np.testing.assert_array_equal(
        np.bincount(data.examples_uint8("train")[1]),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
  else:
    assert data.class_names == builders.FASHION_MNIST_CLASSES


def test_mnist_examples_and_batches_are_floats_in_the_unit_range(mnist):
  x, y = mnist.examples("test", 500, tf.constant([3, 4], tf.int64))
  assert x.shape == (500, 28, 28, 1) and x.dtype == np.float32
  assert x.min() == -1.0 and x.max() == 1.0 and y.shape == (500,)
  again, _ = mnist.examples("test", 500, tf.constant([3, 4], tf.int64))
  np.testing.assert_array_equal(x, again)
  batches = np.stack([b.numpy() for b in mnist.batches(128, seed=1, num_steps=3)])
  assert batches.shape == (3, 128, 28, 28, 1) and batches.dtype == np.float32
  assert batches.min() == -1.0 and batches.max() == 1.0
  resumed = np.stack([b.numpy() for b in mnist.batches(128, seed=1, start_step=2,
                                                       num_steps=1)])
  np.testing.assert_array_equal(resumed[0], batches[2])
  assert not mnist.gathers_on_host  # 47 MB: captured as a tensor


def _tfds_builder(name, data_dir):
  """TFDS's own builder of `name`, features from its code (no download)."""
  return tfds.builder_cls(name)(data_dir=data_dir)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_offline_builders_have_the_features_of_the_tfds_datasets(name, tmp_path):
  offline = builders.OFFLINE[name][0](data_dir=str(tmp_path / "offline"))
  reference = _tfds_builder(name, str(tmp_path / "tfds"))
  assert (offline.info.features.get_tensor_spec()
          == reference.info.features.get_tensor_spec())
  label = offline.info.features["label"]
  reference_label = reference.info.features["label"]
  assert label.num_classes == reference_label.num_classes == 10
  if name == "fashion_mnist":  # TFDS's code names these classes (cifar10 reads its
    assert label.names == reference_label.names  # names from the download)
  assert offline.info.supervised_keys == reference.info.supervised_keys
  assert not offline.is_prepared() and not reference.is_prepared()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_prepared_offline_datasets_read_like_tfds(name, offline_data_dir, request):
  request.getfixturevalue(name)  # prepared
  builder = tfds_loader.builder_for(offline_config(offline_data_dir[0], name), name,
                                    name)
  assert builder.name == f"offline_{name}" and builder.is_prepared()
  assert builder.info.splits["train"].num_examples == 60000
  assert builder.info.splits["test"].num_examples == 10000
  spec = builder.as_dataset(split="test").element_spec
  assert spec == _tfds_builder(name, offline_data_dir[0]).info.features.get_tensor_spec()


def test_real_cifar10_pipeline(offline_data_dir):
  directory, linked = offline_data_dir
  if "cifar10" not in linked and not os.environ.get(FRESH_ENV):
    pytest.skip("no prepared offline CIFAR-10 in the TFDS cache; preparing it from "
                f"the zip takes about a minute ({FRESH_ENV}=1 does); preparation is "
                "tested on a small zip")
  data = DATASETS.get("cifar10")(offline_config(directory, "cifar10"))
  assert data.element_shape == (32, 32, 3) and data.class_names == \
      builders.CIFAR10_CLASSES
  assert data.description == "CIFAR-10 (JPEG q75)"
  for split, count in (("train", 50000), ("test", 10000)):
    images, labels = data.examples_uint8(split)
    assert images.shape == (count, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), count // 10)
  x, _ = data.examples("test", 200, tf.constant([0, 1], tf.int64))
  assert x.dtype == np.float32 and -1.0 <= x.min() < x.max() <= 1.0
  spec = tfds_loader.builder_for(offline_config(directory, "cifar10"), "cifar10",
                                 "cifar10").as_dataset(split="test").element_spec
  assert spec == _tfds_builder("cifar10", directory).info.features.get_tensor_spec()


def test_real_cifar10_zip_lists_5000_training_images_per_class():
  members = builders._cifar_members(  # pylint: disable=protected-access
      os.path.join(OFFLINE_DIR, "cifar10", builders.CIFAR10_ZIP))
  for split, count in (("train", 5000), ("test", 1000)):
    labels = np.array([label for _, label in members[split]])
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), count)
    for member, label in members[split][::997]:
      assert member.split("/")[:2] == [split, builders.CIFAR10_CLASSES[label]]


# ------------------------------------------------------------------ CIFAR-10 layout
def _jpeg(array):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="JPEG", quality=75)
  return buffer.getvalue()


def _decoded_jpeg(data):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(io.BytesIO(data)) as image:
    return np.asarray(image.convert("RGB"))


def write_cifar_zip(path, per_class=(("train", 2), ("test", 1)), broken_member=None):
  """A zip of the CIFAR-10 layout with random JPEGs; returns {split: (images,
  labels)} as PIL decodes them."""
  rng = np.random.RandomState(7)
  splits = {}
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
    for split, count in per_class:
      images, labels = [], []
      for label, class_name in enumerate(builders.CIFAR10_CLASSES):
        for i in range(count):
          member = f"{split}/{class_name}/{i:04d}.jpg"
          data = _jpeg(rng.randint(0, 256, (32, 32, 3)).astype(np.uint8))
          if member == broken_member:
            data = data[:20] + b"\x00" * 40
          else:
            images.append(_decoded_jpeg(data))
            labels.append(label)
          archive.writestr(member, data)
      splits[split] = (np.stack(images), np.array(labels, np.int64))
  return splits


@pytest.fixture
def small_cifar(tmp_path, monkeypatch):
  """A config whose offline CIFAR-10 is a 30-image zip (2 + 1 per class)."""
  monkeypatch.setattr(builders, "CIFAR10_SPLIT_SIZES", {"train": 20, "test": 10})
  config = DataConfig(dataset="cifar10", source="offline",
                      data_dir=str(tmp_path / "tfds"),
                      offline_dir=str(tmp_path / "offline"))
  return config, os.path.join(config.offline_dir, "cifar10", builders.CIFAR10_ZIP)


def test_cifar10_preparation_from_a_small_zip(small_cifar):
  config, path = small_cifar
  expected = write_cifar_zip(path)
  data = DATASETS.get("cifar10")(config)
  assert data.description == "CIFAR-10 (JPEG q75)" and data.element_shape == (32, 32, 3)
  for split in ("train", "test"):
    assert_same_examples(*data.examples_uint8(split), *expected[split])
  builder = tfds_loader.builder_for(config, "cifar10", "cifar10")
  assert builder.as_dataset(split="train").element_spec == _tfds_builder(
      "cifar10", config.data_dir).info.features.get_tensor_spec()
  # The decoded arrays are cached; a damaged cache is rebuilt.
  cache = tfds_loader._decoded_cache(builder, "train", "")  # pylint: disable=protected-access
  assert os.path.isfile(cache)
  with open(cache, "wb") as f:
    f.write(b"not an npz")
  assert_same_examples(*tfds_loader.load_split(builder, "train"), *expected["train"])


@pytest.mark.parametrize("damage, message", [
    ("not_a_zip", "is not a readable zip file"),
    ("truncated", "is not a readable zip file"),
    ("too_few", "holds 10 train images"),
    ("bad_member", "member train/cat/0001.jpg is not a readable JPEG"),
])
def test_damaged_cifar_zip_is_refused_naming_it(small_cifar, damage, message):
  config, path = small_cifar
  write_cifar_zip(path, per_class=(("train", 1 if damage == "too_few" else 2),
                                   ("test", 1)),
                  broken_member="train/cat/0001.jpg" if damage == "bad_member" else None)
  if damage == "not_a_zip":
    with open(path, "wb") as f:
      f.write(b"PK\x03\x04 but nothing else")
  elif damage == "truncated":
    with open(path, "rb") as f:
      data = f.read()
    with open(path, "wb") as f:
      f.write(data[:len(data) * 2 // 3])
  with pytest.raises(DataError) as error:
    DATASETS.get("cifar10")(config)
  assert path in str(error.value) and message in str(error.value)
  builder = builders.OfflineCifar10(data_dir=config.data_dir)
  assert not builder.is_prepared()  # nothing half-prepared is left to be read


# ------------------------------------------------------------------ IDX checks
def write_idx(path, array, magic=None, gz=True, cut=None):
  array = np.asarray(array, np.uint8)
  if magic is None:
    magic = idx.IMAGES_MAGIC if array.ndim == 3 else idx.LABELS_MAGIC
  data = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()
  if cut is not None:
    data = data[:cut]
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if gz else data)
  return str(path)


def test_idx_reader_reads_gzip_and_raw(tmp_path):
  images = np.arange(2 * 3 * 4).reshape(2, 3, 4)
  for gz in (True, False):
    path = write_idx(tmp_path / f"images{gz}", images, gz=gz)
    np.testing.assert_array_equal(idx.read_idx(path, idx.IMAGES_MAGIC), images)


@pytest.mark.parametrize("case, message", [
    ("header", "truncated inside its header"),
    ("tiny", "not even an IDX header"),
    ("body", "is truncated: the header of"),
    ("long", "longer than its header says"),
    ("magic", "is not an IDX file of images: magic number 2049, expected 2051"),
    ("gzip", "is a damaged gzip file"),
    ("missing", "does not exist"),
])
def test_idx_reader_refuses_damaged_files_naming_them(tmp_path, case, message):
  images = np.zeros((5, 28, 28), np.uint8)
  path = str(tmp_path / "train-images-idx3-ubyte.gz")
  if case == "header":
    write_idx(path, images, cut=10)
  elif case == "tiny":
    write_idx(path, images, cut=3)
  elif case == "body":
    write_idx(path, images, cut=16 + 4 * 784 + 100)
  elif case == "long":
    with open(path, "wb") as f:
      f.write(gzip.compress(struct.pack(">4I", idx.IMAGES_MAGIC, 5, 28, 28)
                            + bytes(5 * 784 + 1)))
  elif case == "magic":
    write_idx(path, images, magic=idx.LABELS_MAGIC)
  elif case == "gzip":
    data = gzip.compress(bytes(1000))
    with open(path, "wb") as f:
      f.write(data[:12] + b"\xff" * 20 + data[32:])
  with pytest.raises(DataError) as error:
    idx.read_idx(path, idx.IMAGES_MAGIC)
  assert path in str(error.value) and message in str(error.value)


def test_idx_split_refuses_count_mismatch_and_bad_labels(tmp_path):
  images = write_idx(tmp_path / "images.gz", np.zeros((5, 28, 28)))
  short = write_idx(tmp_path / "labels.gz", np.zeros(4))
  with pytest.raises(DataError, match="holds 5 images but .*labels.gz holds 4 labels"):
    idx.read_split(images, short)
  bad = write_idx(tmp_path / "bad-labels.gz", [0, 1, 2, 3, 12])
  with pytest.raises(DataError, match="bad-labels.gz holds label 12"):
    idx.read_split(images, bad)


def test_damaged_offline_mnist_is_refused_before_anything_is_prepared(tmp_path):
  folder = tmp_path / "offline" / "mnist"
  folder.mkdir(parents=True)
  for split, (image_file, label_file) in builders.IDX_FILES.items():
    write_idx(folder / image_file, np.zeros((10, 28, 28)),
              cut=16 + 9 * 784 if split == "train" else None)
    write_idx(folder / label_file, np.arange(10))
  config = DataConfig(dataset="mnist", data_dir=str(tmp_path / "tfds"),
                      offline_dir=str(tmp_path / "offline"))
  with pytest.raises(DataError) as error:
    DATASETS.get("mnist")(config)
  assert str(folder / "train-images-idx3-ubyte.gz") in str(error.value)
  assert "truncated" in str(error.value)
  assert not builders.OfflineMnist(data_dir=config.data_dir).is_prepared()


@pytest.mark.parametrize("source", ["auto", "offline"])
def test_missing_offline_folder_names_it_and_the_tfds_remedy(tmp_path, source,
                                                             no_download):
  config = DataConfig(dataset="mnist", source=source, data_dir=str(tmp_path / "tfds"),
                      offline_dir=str(tmp_path / "nothing"))
  with pytest.raises(DataError) as error:
    DATASETS.get("mnist")(config)
  message = str(error.value)
  assert message.startswith("dataset mnist not found")
  assert str(tmp_path / "nothing" / "mnist") in message
  assert "train-images-idx3-ubyte.gz" in message and "--data.source=tfds" in message
  looked_in_cache = f"no prepared TFDS dataset mnist in {tmp_path / 'tfds'}" in message
  assert looked_in_cache == (source == "auto")


def test_png_encoder_is_lossless():
  rng = np.random.RandomState(1)
  for shape in ((28, 28, 1), (32, 32, 3), (5, 7, 3)):
    image = rng.randint(0, 256, shape).astype(np.uint8)
    decoded = tf.io.decode_png(builders.encode_png(image)).numpy()
    np.testing.assert_array_equal(decoded, image)


# ------------------------------------------------------------------ ImageData
def synthetic(num_examples=100, shape=(4, 4, 1), **kwargs):
  """Image i is filled with the value i, so a batch shows which images it holds."""
  images = np.broadcast_to(np.arange(num_examples, dtype=np.uint8)[:, None, None, None],
                           (num_examples,) + shape).copy()
  return ImageData("synthetic", (images, np.arange(num_examples) % 10), **kwargs)


def indices_of(batches):
  """The image indices of float batches of `synthetic` data."""
  return to_uint8(np.asarray(batches))[..., 0, 0, 0]


def take(data, steps, seed=0, start_step=0, batch_size=32):
  return np.stack([b.numpy() for b in data.batches(batch_size, seed, start_step,
                                                   steps)])


@pytest.mark.parametrize("host", [False, True])
def test_batches_are_full_and_reshuffled_every_epoch(host):
  data = synthetic(host_gather_bytes=0 if host else images_lib.HOST_GATHER_BYTES)
  assert data.gathers_on_host == host
  batches = take(data, 9, seed=4)  # 3 epochs of 3 full batches (4 images left out)
  assert batches.shape == (9, 32, 4, 4, 1) and batches.dtype == np.float32
  epochs = indices_of(batches).reshape(3, 96)
  for epoch in epochs:
    assert len(np.unique(epoch)) == 96
  assert not np.array_equal(epochs[0], epochs[1])
  assert not np.array_equal(epochs[0], np.arange(96))  # shuffled
  np.testing.assert_array_equal(
      epochs.reshape(-1),
      np.concatenate([b.numpy() for b in epoch_batches(100, 32, 4, num_steps=9)]))


@pytest.mark.parametrize("host", [False, True])
@pytest.mark.parametrize("start_step", [1, 3, 7])
def test_batches_resume_exactly(host, start_step):
  data = synthetic(host_gather_bytes=0 if host else images_lib.HOST_GATHER_BYTES)
  full = take(data, 10, seed=2)
  np.testing.assert_array_equal(take(data, 10 - start_step, seed=2,
                                     start_step=start_step), full[start_step:])
  assert not np.array_equal(take(data, 10, seed=3), full)


def test_host_gather_equals_the_in_graph_gather_also_when_distributed():
  in_graph, on_host = synthetic(shape=(3, 5, 3)), synthetic(shape=(3, 5, 3),
                                                          host_gather_bytes=0)
  np.testing.assert_array_equal(take(on_host, 6, seed=9), take(in_graph, 6, seed=9))
  strategy = tf.distribute.MirroredStrategy(["/CPU:0"])
  dataset = strategy.experimental_distribute_dataset(on_host.batches(32, 9,
                                                                     num_steps=2))
  got = np.stack([b.numpy() for b in dataset])
  np.testing.assert_array_equal(got, take(in_graph, 2, seed=9))
  assert got.shape[1:] == (32, 3, 5, 3)


def test_unlabelled_data_reads_labels_as_minus_one():
  images = np.zeros((6, 2, 2, 3), np.uint8)
  data = ImageData("faces", (images, None), evaluators=("samples",))
  assert data.num_classes == 0
  x, y = data.examples("train")
  assert x.shape == (6, 2, 2, 3) and x.min() == -1.0
  np.testing.assert_array_equal(y, -1)


def test_examples_are_stateless_draws_without_replacement():
  data = synthetic()
  seed = tf.constant([5, 6], tf.int64)
  x, y = data.examples("test", 40, seed)
  chosen = indices_of(x)
  assert len(np.unique(chosen)) == 40 and np.all(np.diff(chosen) > 0)
  np.testing.assert_array_equal(y, chosen % 10)
  np.testing.assert_array_equal(data.examples("test", 40, seed)[0], x)
  assert not np.array_equal(data.examples("test", 40, seed + 1)[0], x)
  np.testing.assert_array_equal(data.held_out(40, seed).numpy(), x)


# ------------------------------------------------------------------ Stacked MNIST
def test_stacked_mnist_channels_are_the_digits_of_its_label(mnist):
  data = StackedMnist(mnist, size=1000)
  seed = tf.constant([1, 2], tf.int64)
  x, y = data.examples("test", 300, seed)
  triples = data.triples("test", 300, seed)
  digits, digit_labels = mnist.examples_uint8("test")
  assert x.shape == (300, 28, 28, 3) and x.dtype == np.float32
  for channel in range(3):
    np.testing.assert_array_equal(to_uint8(x[..., channel]),
                                  digits[triples[:, channel], ..., 0])
  np.testing.assert_array_equal(
      y, digit_labels[triples] @ np.array([100, 10, 1]))
  # The training batches stack the digits of the fixed set, in epoch order.
  train_digits, _ = mnist.examples_uint8("train")
  batch = next(iter(data.batches(64, seed=8))).numpy()
  order = next(iter(epoch_batches(1000, 64, 8))).numpy()
  table = data.training_triples(8).numpy()[order]
  for channel in range(3):
    np.testing.assert_array_equal(to_uint8(batch[..., channel]),
                                  train_digits[table[:, channel], ..., 0])


def test_stacked_mnist_fixed_set_covers_all_1000_modes(mnist):
  """128,000 triples: each mode is expected 128,000 p_a p_b p_c >= 93 times (digit
  frequencies are >= 0.09), so a missing mode (probability < 1000 e^-93) means a bug."""
  data = StackedMnist(mnist, size=128000)
  labels = data.training_labels(seed=0)
  assert labels.shape == (128000,)
  counts = np.bincount(labels, minlength=1000)
  assert len(counts) == 1000 and counts.min() > 0
  digit_labels = mnist.examples_uint8("train")[1]
  np.testing.assert_array_equal(
      labels, digit_labels[data.training_triples(0).numpy()] @ np.array([100, 10, 1]))
  assert not np.array_equal(data.training_labels(seed=1), labels)


@pytest.mark.parametrize("size", [1000, 0])
def test_stacked_mnist_batches_are_stateless_in_seed_and_step(mnist, size):
  data = StackedMnist(mnist, size=size)
  full = take(data, 18, seed=5, batch_size=64)  # crosses the epoch end of size 1000
  assert full.shape == (18, 64, 28, 28, 3) and full.min() == -1.0 and full.max() == 1.0
  np.testing.assert_array_equal(take(data, 6, seed=5, start_step=12, batch_size=64),
                                full[12:])
  assert not np.array_equal(take(data, 2, seed=6, batch_size=64), full[:2])
  keys = _row_keys(to_uint8(full.reshape(18 * 64, -1)))
  if size:
    # Epoch 0 (batches 0-14) holds distinct images of the fixed set; epoch 1 draws
    # from the same set again.
    fixed_set = stack(mnist.examples_uint8("train")[0], data.training_triples(5).numpy())
    assert len(np.unique(keys[:15 * 64])) == 15 * 64
    assert np.isin(keys, _row_keys(fixed_set.reshape(size, -1))).all()
  else:
    assert len(np.unique(keys)) == len(keys)  # fresh triples every step


def test_registered_stacked_mnist(offline_data_dir, mnist):
  data = DATASETS.get("stacked_mnist")(offline_config(offline_data_dir[0],
                                                     "stacked_mnist", size=500))
  assert isinstance(data, ImageData) and data.name == "stacked_mnist"
  assert data.element_shape == (28, 28, 3) and data.num_classes == 1000
  assert data.class_names[0] == "000" and data.class_names[123] == "123"
  assert data.class_names[-1] == "999"
  assert data.evaluators == ("stacked_mnist", "samples")
  assert data.num_examples("train") == 500 and data.num_examples("test") == 10000
  assert StackedMnist(mnist, size=0).num_examples("train") == 60000
  assert data.held_out(20, tf.constant([0, 3], tf.int64)).shape == (20, 28, 28, 3)


# ------------------------------------------------------------------ CelebA, ImageNet32
def test_celeb_a_crop_is_the_centre_108_square():
  image = np.zeros((218, 178, 3), np.uint8)
  image[55:163, 35:143] = 200
  out = celeb_a_lib.center_crop_resize(tf.constant(image), 64).numpy()
  assert out.shape == (64, 64, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out, 200)
  ramp = np.broadcast_to(np.arange(178, dtype=np.uint8)[None, :, None], (218, 178, 3))
  out = celeb_a_lib.center_crop_resize(tf.constant(ramp), 108).numpy()
  np.testing.assert_array_equal(out[0, :, 0], np.arange(35, 143))


MOCKED = [("celeb_a", {}, (64, 64, 3), 0),
          ("celeb_a", {"image_size": 32}, (32, 32, 3), 0),
          ("imagenet32", {}, (32, 32, 3), 1000)]


@pytest.mark.parametrize("name, values, shape, num_classes", MOCKED)
def test_tfds_datasets_through_mock_data(tmp_path, name, values, shape, num_classes,
                                        download_host_answers):
  config = DataConfig(dataset=name, source="tfds", data_dir=str(tmp_path), **values)
  with tfds.testing.mock_data(num_examples=12,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    data = DATASETS.get(name)(config)
  # The mock is not prepared on disk: the download host is checked first.
  assert download_host_answers == [config.dataset if name == "celeb_a"
                                   else "imagenet_resized/32x32"]
  assert data.element_shape == shape and data.num_classes == num_classes
  for split in ("train", "test"):
    images, labels = data.examples_uint8(split)
    assert images.shape == (12,) + shape and images.dtype == np.uint8
    if num_classes:
      assert labels.min() >= 0 and labels.max() < num_classes
    else:
      np.testing.assert_array_equal(labels, -1)
  x, _ = data.examples("test")
  assert x.dtype == np.float32 and -1.0 <= x.min() and x.max() <= 1.0
  batches = take(data, 2, batch_size=4)
  assert batches.shape == (2, 4) + shape
  if name == "imagenet32":
    # The builder's names: WordNet ids in Imagenet32's label order (0: kit fox).
    assert len(data.class_names) == 1000 and data.class_names[0] == "n02119789"
    assert data.evaluators[-1] == "samples"
  else:
    assert data.evaluators == ("samples",) and data.class_names == ()
  # Random mock examples are never cached as if they were the dataset.
  assert not os.path.exists("/tmp/non-existing/tfds/data_dir/tf_stackelberg_decoded")


@pytest.mark.parametrize("name, tfds_name", [("celeb_a", "celeb_a"),
                                             ("imagenet32", "imagenet_resized/32x32")])
@pytest.mark.parametrize("source", ["auto", "offline"])
def test_tfds_only_datasets_without_data_say_where_they_looked(
    tmp_path, name, tfds_name, source, no_download):
  config = DataConfig(dataset=name, source=source, data_dir=str(tmp_path / "tfds"))
  with pytest.raises(DataError) as error:
    DATASETS.get(name)(config)
  message = str(error.value)
  assert message.startswith(f"dataset {name} not found")
  assert f"{name} has no offline copy" in message
  assert "--data.source=tfds" in message
  if source == "auto":
    assert f"no prepared TFDS dataset {tfds_name} in {tmp_path / 'tfds'}" in message


def test_failed_tfds_download_is_a_data_error(tmp_path, monkeypatch,
                                              download_host_answers):
  def unreachable(*args, **kwargs):
    raise ConnectionError("Network is unreachable")
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", unreachable)
  config = DataConfig(dataset="celeb_a", source="tfds", data_dir=str(tmp_path))
  with pytest.raises(DataError, match="--data.source=tfds: tensorflow-datasets could "
                     "not download and prepare celeb_a into .*Network is unreachable"):
    DATASETS.get("celeb_a")(config)


def test_cli_reports_a_missing_dataset_in_one_line_with_exit_2(tmp_path, capsys,
                                                               no_download):
  status = run_main("--data.dataset=celeb_a", f"--data.data_dir={tmp_path / 'tfds'}",
                    f"--model_dir={tmp_path / 'run'}")
  err = capsys.readouterr().err.strip().splitlines()
  assert status == 2
  assert len(err) == 1 and err[0].startswith("error: dataset celeb_a not found: ")
  assert str(tmp_path / "tfds") in err[0] and "--data.source=tfds" in err[0]
