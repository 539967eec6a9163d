"""`--data.dataset=cifar10`: CIFAR-10, 32x32x3 (docs/design.md section 11.1)."""

from tf_stackelberg.data import tfds_loader
from tf_stackelberg.data.images import ImageData
from tf_stackelberg.data.offline.builders import CIFAR10_CLASSES
from tf_stackelberg.data.registry import DATASETS


@DATASETS.register("cifar10")
def cifar10(config):
  """CIFAR-10 from `--data.source`. The offline copy is JPEG q75, which reports name."""
  builder = tfds_loader.builder_for(config, "cifar10", "cifar10")
  offline = builder.name.startswith("offline_")
  return ImageData("cifar10", tfds_loader.load_split(builder, "train"),
                   tfds_loader.load_split(builder, "test"), CIFAR10_CLASSES,
                   description="CIFAR-10 (JPEG q75)" if offline else "CIFAR-10")
