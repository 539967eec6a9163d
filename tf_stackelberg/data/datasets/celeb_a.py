"""`--data.dataset=celeb_a`: CelebA faces, centre-cropped to 108x108 and resized to
`--data.image_size` (64), unlabelled (docs/design.md section 11.1).

No offline copy exists: the data comes from a TFDS `celeb_a` prepared in
`--data.data_dir`, or from `--data.source=tfds`, which downloads it (1.4 GB).
"""

import tensorflow as tf

from tf_stackelberg.data import tfds_loader
from tf_stackelberg.data.images import ImageData
from tf_stackelberg.data.registry import DATASETS

#: Side of the square crop around the face (the DCGAN preprocessing of the aligned
#: 218x178 images).
CROP = 108


def center_crop_resize(image, size, crop=CROP):
  """uint8 `[h, w, 3]` -> uint8 `[size, size, 3]`: the `crop` x `crop` square at the
  centre (rows 55-162, columns 35-142 of a 218x178 CelebA image), resized with
  antialiased bilinear interpolation and rounded."""
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  top, left = (height - crop) // 2, (width - crop) // 2
  square = image[top:top + crop, left:left + crop]
  resized = tf.image.resize(square, [size, size], method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


@DATASETS.register("celeb_a")
def celeb_a(config):
  """CelebA from `--data.source` (TFDS `celeb_a`): train 162,770 images, test 19,962,
  labels -1 (no classes). At 64x64 the training split is 2.0 GB in memory."""
  builder = tfds_loader.builder_for(config, "celeb_a", "celeb_a")
  size = config.image_size

  def load(split):
    return tfds_loader.load_split(builder, split,
                                  preprocess=lambda x: center_crop_resize(x, size),
                                  label_key=None, cache_key=f"_crop{CROP}_{size}")

  return ImageData("celeb_a", load("train"), load("test"), class_names=(),
                   evaluators=("samples",),
                   description=f"CelebA {size}x{size} (centre {CROP}x{CROP} crop)")
