"""TFDS builders over the offline copies of MNIST, Fashion-MNIST and CIFAR-10.

Each builder reads its source files from the TFDS *manual directory* (the
`--data.offline_dir` folder of that dataset) and writes a normal TFDS dataset into the
cache (`--data.data_dir`), once. Its features are those of the TFDS dataset of the
same name (`image` uint8 `[H, W, C]`, `label` int64, and `id` for CIFAR-10), so
everything downstream reads either source the same way. The builders are not
registered under TFDS's own names: `tfds.load('mnist')` keeps meaning the online
dataset.

Source layouts (docs/design.md section 11.1):

```none
OFFLINE_DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
OFFLINE_DIR/fashion_mnist/  the same four files
OFFLINE_DIR/cifar10/cifar10-jpeg.zip   members train/<class>/<n>.jpg, test/<class>/<n>.jpg
```
"""

import io
import os
import struct
import zipfile
import zlib

import numpy as np
import tensorflow_datasets as tfds

from tf_stackelberg.common.errors import DataError
from tf_stackelberg.data import idx

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                   "horse", "ship", "truck")
IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
CIFAR10_ZIP = "cifar10-jpeg.zip"
#: Images per split of the CIFAR-10 zip; a zip with other counts is refused.
CIFAR10_SPLIT_SIZES = {"train": 50000, "test": 10000}


def _png_chunk(tag, data):
  return (struct.pack(">I", len(data)) + tag + data
          + struct.pack(">I", zlib.crc32(tag + data)))


def encode_png(image):
  """uint8 `[H, W, C]` (C = 1: grey, 3: RGB) as PNG bytes, lossless.

  The builders hand TFDS encoded images: its own encoder runs one eager TensorFlow
  op per image, and preparing MNIST took about a minute. This writes the PNG
  directly (rows unfiltered, zlib level 6), several times faster.
  """
  height, width, channels = image.shape
  rows = np.zeros((height, 1 + width * channels), np.uint8)  # filter byte 0: none
  rows[:, 1:] = image.reshape(height, width * channels)
  header = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 3: 2}[channels], 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
          + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
          + _png_chunk(b"IEND", b""))


class _IdxBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A 28x28 grey-scale dataset in four IDX files, as TFDS's `mnist`."""

  VERSION = tfds.core.Version("1.0.0")
  CLASS_NAMES = None  # None: labels 0-9 without names, as TFDS's mnist
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
      "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in the manual directory.")

  def _info(self):
    label = (tfds.features.ClassLabel(names=list(self.CLASS_NAMES)) if self.CLASS_NAMES
             else tfds.features.ClassLabel(num_classes=10))
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1)), "label": label}),
        supervised_keys=("image", "label"))

  def _split_generators(self, dl_manager):
    folder = os.fspath(dl_manager.manual_dir)
    # Every file is read and checked before anything is written.
    splits = {split: idx.read_split(*(os.path.join(folder, f) for f in names))
              for split, names in IDX_FILES.items()}
    return {split: self._generate_examples(*arrays) for split, arrays in splits.items()}

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": encode_png(image[..., None]), "label": int(label)}


class OfflineMnist(_IdxBuilder, skip_registration=True):
  """MNIST from its IDX files (features of TFDS's `mnist`)."""
  name = "offline_mnist"


class OfflineFashionMnist(_IdxBuilder, skip_registration=True):
  """Fashion-MNIST from its IDX files (features of TFDS's `fashion_mnist`)."""
  name = "offline_fashion_mnist"
  CLASS_NAMES = FASHION_MNIST_CLASSES


def _decode_jpeg(data, member, path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(io.BytesIO(data)) as image:
      array = np.asarray(image.convert("RGB"))
  except Exception as e:  # PIL raises several types for damaged images
    raise DataError(f"{path}: member {member} is not a readable JPEG ({e})") from e
  if array.shape != (32, 32, 3):
    raise DataError(f"{path}: member {member} is {array.shape[1]}x{array.shape[0]}, "
                    "not 32x32")
  return array


class OfflineCifar10(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """CIFAR-10 from a zip of JPEG files (features of TFDS's `cifar10`).

  The offline copy is re-encoded as JPEG (quality 75): its pixels differ slightly
  from the original PNG-exact data, so metrics computed on it are labelled
  "CIFAR-10 (JPEG q75)" and are not comparable with published figures.
  """

  name = "offline_cifar10"
  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Put {CIFAR10_ZIP} (members train/<class>/<n>.jpg and test/<class>/<n>.jpg) in "
      "the manual directory.")

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(),
            "image": tfds.features.Image(shape=(32, 32, 3)),
            "label": tfds.features.ClassLabel(names=list(CIFAR10_CLASSES))}),
        supervised_keys=("image", "label"))

  def _split_generators(self, dl_manager):
    path = os.path.join(os.fspath(dl_manager.manual_dir), CIFAR10_ZIP)
    members = _cifar_members(path)
    return {split: self._generate_examples(path, members[split])
            for split in ("train", "test")}

  def _generate_examples(self, path, members):
    try:
      with zipfile.ZipFile(path) as archive:
        for member, label in members:
          try:
            data = archive.read(member)
          except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
            raise DataError(f"{path}: member {member} is damaged ({e})") from e
          stem = os.path.splitext(member)[0].replace("/", "_")
          yield member, {"id": stem,
                         "image": encode_png(_decode_jpeg(data, member, path)),
                         "label": label}
    except (zipfile.BadZipFile, OSError) as e:
      raise DataError(f"{path} is not a readable zip file ({e})") from e


def _cifar_members(path):
  """{'train': [(member, label)], 'test': [...]} of the zip, checked for layout."""
  if not os.path.exists(path):
    raise DataError(f"{path} does not exist")
  try:
    with zipfile.ZipFile(path) as archive:
      names = archive.namelist()
  except (zipfile.BadZipFile, OSError) as e:
    raise DataError(f"{path} is not a readable zip file ({e}); replace it with a good "
                    "copy") from e
  members = {"train": [], "test": []}
  for name in sorted(names):
    parts = name.split("/")
    if len(parts) != 3 or not parts[2].lower().endswith(".jpg"):
      continue
    split, label, _ = parts
    if split in members and label in CIFAR10_CLASSES:
      members[split].append((name, CIFAR10_CLASSES.index(label)))
  for split, expected in CIFAR10_SPLIT_SIZES.items():
    if len(members[split]) != expected:
      raise DataError(f"{path} holds {len(members[split]):,} {split} images in "
                      f"{split}/<class>/*.jpg, expected {expected:,}")
  return members


#: dataset name -> (offline builder, folder of its files under --data.offline_dir,
#: files that must be there).
OFFLINE = {
    "mnist": (OfflineMnist, "mnist", sum(IDX_FILES.values(), ())),
    "fashion_mnist": (OfflineFashionMnist, "fashion_mnist", sum(IDX_FILES.values(), ())),
    "cifar10": (OfflineCifar10, "cifar10", (CIFAR10_ZIP,)),
}
