"""`--data.dataset=mnist`: MNIST digits, 28x28x1 (docs/design.md section 11.1)."""

from tf_stackelberg.data import tfds_loader
from tf_stackelberg.data.images import ImageData
from tf_stackelberg.data.registry import DATASETS

DIGITS = tuple(str(d) for d in range(10))


def load_digits(config, name="mnist", class_names=DIGITS, description="MNIST"):
  """An `ImageData` of an MNIST-format dataset (train 60k, test 10k)."""
  builder = tfds_loader.builder_for(config, name, name)
  return ImageData(name, tfds_loader.load_split(builder, "train"),
                   tfds_loader.load_split(builder, "test"), class_names,
                   description=description)


@DATASETS.register("mnist")
def mnist(config):
  """MNIST from `--data.source` (docs/design.md section 11.1)."""
  return load_digits(config)
