"""Feature networks: what the image evaluators need of a network (docs/design.md
section 9).

A `FeatureNetwork` maps images in `[-1, 1]` to class scores `[N, C]` (logits or
probabilities) and features `[N, D]` in one pass. The image metrics are plain
functions of those two outputs (`tf_stackelberg.metrics.image_metrics`), so any network
serves: the data set's own classifier (`classifiers.load_classifier`) or InceptionV3
(`inception.load_inception`).
"""

from typing import Any, Dict, Optional

import keras
import tensorflow as tf


class FeatureNetwork:
  """A network with class scores and features, for image metrics.

  Unpacks to the pair `(logits_fn, features_fn)`; calling it gives both outputs of one
  forward pass, which the evaluators use.

  Args:
    name: what the network is, for reports ('mnist classifier', 'InceptionV3').
    model: a Keras model from images to `[scores, features]`, or to features alone
      (`scores` None then: no class-based metrics).
    from_logits: whether the scores are logits (else probabilities).
    preprocess: maps images in `[-1, 1]` to the model's input (default: identity).
    batch_size: images per forward pass that keep memory moderate.
    info: JSON-able facts about the network (accuracy, training data), reported
      with the results.
  """

  def __init__(self, name: str, model: keras.Model, from_logits: bool = True,
               preprocess=None, batch_size: int = 500,
               info: Optional[Dict[str, Any]] = None):
    self.name = name
    self.model = model
    self.from_logits = bool(from_logits)
    self.preprocess = preprocess
    self.batch_size = int(batch_size)
    self.info = dict(info or {})
    self.has_scores = len(model.outputs) == 2
    self.num_classes = int(model.outputs[0].shape[-1]) if self.has_scores else 0

  def __call__(self, images):
    """(scores `[N, C]` or None, features `[N, D]`) of images in `[-1, 1]`."""
    x = tf.cast(images, tf.float32)
    if self.preprocess is not None:
      x = self.preprocess(x)
    outputs = self.model(x, training=False)
    if self.has_scores:
      return outputs[0], outputs[1]
    return None, outputs

  def logits_fn(self, images):
    """The class scores of images in `[-1, 1]`."""
    return self(images)[0]

  def features_fn(self, images):
    """The features of images in `[-1, 1]`."""
    return self(images)[1]

  def __iter__(self):
    return iter((self.logits_fn, self.features_fn))
