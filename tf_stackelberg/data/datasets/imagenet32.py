"""`--data.dataset=imagenet32`: ImageNet downsampled to 32x32 (Chrabaszcz et al.,
2017; TFDS `imagenet_resized/32x32`), 1000 classes (docs/design.md section 11.1).

No offline copy exists: the data comes from a TFDS `imagenet_resized/32x32`
prepared in `--data.data_dir`, or from `--data.source=tfds`, which downloads it.
The training split is 1,281,167 images, 3.9 GB in memory.
"""

from tf_stackelberg.data import tfds_loader
from tf_stackelberg.data.images import ImageData
from tf_stackelberg.data.registry import DATASETS

TFDS_NAME = "imagenet_resized/32x32"


@DATASETS.register("imagenet32")
def imagenet32(config):
  """ImageNet32 from `--data.source`; its test split is the 50,000 validation
  images. Class names are the builder's (WordNet ids such as 'n01440764')."""
  builder = tfds_loader.builder_for(config, "imagenet32", TFDS_NAME)
  names = builder.info.features["label"].names
  return ImageData("imagenet32", tfds_loader.load_split(builder, "train"),
                   tfds_loader.load_split(builder, "validation"), names,
                   description="ImageNet 32x32")
