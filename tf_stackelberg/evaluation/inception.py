"""InceptionV3 (Szegedy et al., 2016) as a `FeatureNetwork`, from a weights file the
user supplies (`--eval.inception_weights`); weights are never downloaded
(docs/design.md section 9.3).

Images in `[-1, 1]` are resized to 299x299 (bilinear), grey images are repeated over
three channels, and the pixels are scaled as `keras.applications.inception_v3.
preprocess_input` expects them (from `[0, 255]` to `[-1, 1]`). The features are the
2048 outputs of the global average pool ('pool_3' of the original FID code), the
scores the 1000 ImageNet probabilities of the top layer. A weights file without the
top layer ('notop') gives features only: FID and KID, no Inception Score.
"""

import os
import warnings

import keras
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.evaluation.networks import FeatureNetwork

INPUT_SIZE = 299
FEATURES_LAYER = "avg_pool"
# Images per forward pass (a 299x299 batch of 50 holds some hundred MB of
# activations).
BATCH_SIZE = 50


def preprocess(images):
  """Images `[N, H, W, 1 or 3]` in `[-1, 1]` -> InceptionV3 inputs `[N, 299, 299, 3]`."""
  x = tf.image.resize(tf.convert_to_tensor(images, tf.float32),
                      [INPUT_SIZE, INPUT_SIZE], method="bilinear")
  if x.shape[-1] == 1:
    x = tf.tile(x, [1, 1, 1, 3])
  return keras.applications.inception_v3.preprocess_input((x + 1.0) * 127.5)


def _with_top():
  model = keras.applications.InceptionV3(include_top=True, weights=None)
  return keras.Model(model.inputs, [model.outputs[0],
                                    model.get_layer(FEATURES_LAYER).output],
                     name="inception_v3_features")


def _without_top():
  return keras.applications.InceptionV3(include_top=False, weights=None,
                                        pooling="avg",
                                        input_shape=(INPUT_SIZE, INPUT_SIZE, 3))


def load_inception(weights_path: str) -> FeatureNetwork:
  """InceptionV3 with the Keras weights file `weights_path` (with or without the top
  layer).

  Raises:
    ConfigError: no path, no such file, or weights that fit neither form.
  """
  flag = "--eval.inception_weights"
  if not weights_path:
    raise ConfigError(f"the 'inception' evaluator needs InceptionV3 weights: set "
                      f"{flag}=PATH to a Keras InceptionV3 weights file (.h5, e.g. "
                      "inception_v3_weights_tf_dim_ordering_tf_kernels.h5); they are "
                      "never downloaded")
  path = os.path.expanduser(weights_path)
  if not os.path.isfile(path):
    raise ConfigError(f"{flag}={weights_path}: no such file")
  errors = []
  for build, has_top in ((_with_top, True), (_without_top, False)):
    model = build()
    form = "with" if has_top else "without"
    # Keras warns, and keeps random weights, for parts of a model it finds no weights
    # for: such a load is a failure here.
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      try:
        model.load_weights(path)
      except (ValueError, KeyError, OSError) as e:
        errors.append(f"{form} top: {str(e).strip().splitlines()[0][:160]}")
        continue
    skipped = [w for w in caught if issubclass(w.category, UserWarning)]
    if skipped:
      errors.append(f"{form} top: {str(skipped[0].message).strip()[:160]}")
      continue
    return FeatureNetwork("InceptionV3", model, from_logits=False,
                          preprocess=preprocess, batch_size=BATCH_SIZE,
                          info={"weights": path, "top": has_top})
  raise ConfigError(f"{flag}={weights_path} holds no Keras InceptionV3 weights "
                    f"({'; '.join(errors)})")
