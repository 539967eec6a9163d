"""`inception`: Inception Score, FID, KID, precision, recall, density and coverage with
InceptionV3 features, from weights the user supplies (`--eval.inception_weights`;
docs/design.md sections 9.3 and 14.2).

The `classifier` evaluator's `FeatureEvaluator` over `inception.load_inception`:
results `inception_score`, `inception_fid`, `inception_kid`, `inception_precision`
and so on (no label metrics: the 1000 ImageNet classes are not the data set's). InceptionV3 at 299x299 costs about 6
GFLOPs per image, so on a CPU `--eval.num_samples` sets a small evaluation (the real
reference set has the same size).
"""

from tf_stackelberg.evaluation import inception
from tf_stackelberg.evaluation.evaluator import require_samples
from tf_stackelberg.evaluation.evaluators.classifier import (MIN_SAMPLES,
                                                             MIN_SAMPLES_REASON,
                                                             FeatureEvaluator,
                                                             feature_settings,
                                                             image_data,
                                                             real_images_of)
from tf_stackelberg.evaluation.registry import EVALUATORS


@EVALUATORS.register("inception")
def inception_evaluator(config, data_source, num_generators):
  """Needs image data with 1 or 3 channels and `--eval.inception_weights`."""
  data = image_data(config, data_source, "inception")
  require_samples(config, "inception", MIN_SAMPLES, MIN_SAMPLES_REASON)
  network = inception.load_inception(config.eval.inception_weights)
  return FeatureEvaluator(network, real_images_of(data, config.eval.num_samples),
                          num_generators, config.eval.num_samples, name="inception",
                          score_name="inception_score", prefix="inception_",
                          **feature_settings(config))
