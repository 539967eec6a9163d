"""The class-ratio energy: `--mode=prepare --sampling.prepare_method=class_ratio`
(docs/design.md section 14.7).

The samplers read their energy's logit as `log p_data(x) / p_g(x)` (section 5.3). A
GAN's own discriminator, even fine-tuned, is a poor estimate of that ratio on image
GANs: it rewards whatever tells real from fake, and resampling by it shifts the
label balance (the target test shows it, section 14.1). Ding et al. (2020) estimate
the ratio in a feature space instead, where real and generated examples overlap and
a small model fits the ratio well. This module does that in the smallest such space,
the class probabilities of a classifier:

1. trains a small convolutional classifier (`ratio_classifier`: strided convolutions,
   no BatchNorm, another architecture than the evaluation classifier's) on the
   training split without the held-out images (`app.held_out`), with the data's
   labels;
2. fits a density-ratio head (one hidden layer) on its softmax probabilities with the
   logistic loss, real training examples against as many fresh generator samples,
   stopping early on the held-out images against other fresh samples and keeping the
   best weights (`fit_ratio_head`);
3. returns one Keras model, images -> logit `[B]` (`class_ratio_network`), that the
   samplers, the health report and the SavedModel use in place of the discriminator.

The sampled target is then `p0(z) exp(r(softmax(c(G z))))`: it corrects the
generator's distribution over what the classifier sees, which classes and how
clearly drawn, and nothing finer. The evaluators use their own classifier, trained
separately; the label KL they report measures nearly what this energy corrects, so
its fall is expected by construction, while FID, KID, precision and density are
measured in that other network's features.

Example:

```python
network, info = class_ratio.prepare_class_ratio(run, config.sampling)
model = latent.latent_model(run.gan, calibration, network=network)
```

References:
  X. Ding, Z. J. Wang, W. J. Welch. Subsampling generative adversarial networks:
  density ratio estimation in feature space with softplus loss. IEEE Transactions on
  Signal Processing, 68, 2020.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from tf_stackelberg.app import latent
from tf_stackelberg.common import salts
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.data.images import ImageData, to_unit_range
from tf_stackelberg.metrics import discriminator_metrics as dm

NETWORK_FILE = "class_ratio.keras"
_CHUNK = 2000  # images per forward pass and per generator draw
_HEAD_WIDTH = 64
_HEAD_PATIENCE = 2
_BATCH = 256


def check_data(data, dataset, flag="--sampling.prepare_method=class_ratio"):
  """`ConfigError` unless `data` (of `--data.dataset=dataset`) are images with
  class labels to train on."""
  if not isinstance(data, ImageData) or data.num_classes < 2:
    raise ConfigError(f"{flag} needs a data set of labelled images (its classifier "
                      f"learns their classes); {dataset} has none: use "
                      "--sampling.prepare_method=finetune")


def ratio_classifier(element_shape, num_classes, name="ratio_classifier"):
  """The classifier whose class probabilities are the ratio's feature space."""
  layers = keras.layers
  inputs = keras.Input(tuple(element_shape), name="images")
  x = inputs
  for filters in (32, 64) if element_shape[-1] == 1 else (32, 64, 128):
    x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
  x = layers.Flatten()(x)
  x = layers.Dense(64, activation="relu")(x)
  return keras.Model(inputs, layers.Dense(num_classes)(x), name=name)


def train_classifier(images, labels, num_classes, epochs, seed):
  """`ratio_classifier` trained on `images` (model range) and integer `labels`."""
  keras.utils.set_random_seed(seed)
  model = ratio_classifier(images.shape[1:], num_classes)
  model.compile(keras.optimizers.Adam(1e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(images, labels, batch_size=_BATCH, epochs=epochs, shuffle=True, verbose=0)
  return model


def probabilities(classifier):
  """The classifier's softmax probabilities, as a Keras model."""
  inputs = keras.Input(classifier.input_shape[1:], name="images")
  return keras.Model(inputs, keras.layers.Softmax()(classifier(inputs)))


def _held_out_loss(head, real, fake):
  return dm.logistic_loss(np.asarray(head(real)).reshape(-1),
                          np.asarray(head(fake)).reshape(-1))


def fit_ratio_head(real, fake, held_real, held_fake, seed,
                   max_epochs=20, patience=_HEAD_PATIENCE):
  """Fits `log p_real(f) / p_fake(f)` on features `f` with the logistic loss.

  Args:
    real, fake: training features `[n, d]` of real examples and model samples.
    held_real, held_fake: held-out features for the early stopping.
    seed: seeds the head's weights and the example order.
    max_epochs: passes over the training features at most.
    patience: epochs without a lower held-out loss before stopping.

  Returns:
    `(head, info)`: a Keras model `[n, d] -> [n, 1]` with the weights of the epoch of
    lowest held-out loss (those before training when none is lower), and what was
    done (the held-out losses by epoch, the epoch kept).
  """
  keras.utils.set_random_seed(seed)
  head = keras.Sequential([keras.Input((real.shape[1],)),
                           keras.layers.Dense(_HEAD_WIDTH, activation="relu"),
                           keras.layers.Dense(1)], name="ratio_head")
  head.compile(keras.optimizers.Adam(1e-3),
               keras.losses.BinaryCrossentropy(from_logits=True))
  x = np.concatenate([real, fake]).astype(np.float32)
  y = np.concatenate([np.ones(len(real)), np.zeros(len(fake))]).astype(np.float32)
  best = _held_out_loss(head, held_real, held_fake)
  losses, best_epoch, best_weights, bad = [best], 0, head.get_weights(), 0
  for epoch in range(1, max_epochs + 1):
    head.fit(x, y, batch_size=_BATCH, epochs=1, shuffle=True, verbose=0)
    loss = _held_out_loss(head, held_real, held_fake)
    losses.append(loss)
    if loss < best:
      best, best_epoch, best_weights, bad = loss, epoch, head.get_weights(), 0
    else:
      bad += 1
      if bad >= patience:
        break
  head.set_weights(best_weights)
  return head, {"held_out_losses": losses, "best_epoch": best_epoch,
                "epochs_run": len(losses) - 1, "best_held_out_loss": best}


def class_ratio_network(classifier, head):
  """One model, images -> ratio logit `[B]`: the head on the class probabilities."""
  inputs = keras.Input(classifier.input_shape[1:], name="images")
  logits = head(keras.layers.Softmax()(classifier(inputs)))
  return keras.Model(inputs, keras.layers.Reshape(())(logits), name="class_ratio")


def _batched(fn, x):
  return np.concatenate([np.asarray(fn(x[i:i + _CHUNK])) for i in range(0, len(x), _CHUNK)])


def _fake_features(run, features_fn, count, salt):
  """Features of `count` fresh generator samples, drawn in chunks."""
  draw = tf.function(run.gan.sample, autograph=False)
  parts = []
  for chunk, start in enumerate(range(0, count, _CHUNK)):
    x, _ = draw(min(_CHUNK, count - start),
                tf.constant([run.config.seed + salt, chunk], tf.int64))
    parts.append(np.asarray(features_fn(x)))
  return np.concatenate(parts)


def _say(line):
  print(line, flush=True)


def prepare_class_ratio(run, sampling, say=_say):
  """Builds the class-ratio network of the restored `run` (steps 1-3 of the module
  text), calling `say` with a line after each step; returns `(network, info)`."""
  data, split, seed = run.data, latent.held_out_split(run), run.config.seed
  check_data(data, run.config.data.dataset)
  started = time.monotonic()
  images, labels = data.examples_uint8("train")
  train_x = to_unit_range(images[split.training_indices]).numpy()
  train_y = np.asarray(labels)[split.training_indices]
  classifier = train_classifier(train_x, train_y, data.num_classes,
                                sampling.ratio_classifier_epochs, seed + salts.PREPARE)
  held_x, held_fake = latent.calibration_sets(run)
  held_y = np.asarray(labels)[np.sort(split.held_out_indices[:len(held_x)])]
  accuracy = float(np.mean(np.argmax(_batched(classifier, np.asarray(held_x)), 1)
                           == held_y))
  trained = time.monotonic()
  say(f"  classifier: held-out accuracy {accuracy:.3f} after "
      f"{sampling.ratio_classifier_epochs} epochs ({trained - started:.0f} s); fitting "
      "the ratio head...")
  features = probabilities(classifier)
  real = _batched(features, train_x)
  fake = _fake_features(run, features, len(real), salts.PREPARE + 1)
  head, head_info = fit_ratio_head(real, fake, _batched(features, np.asarray(held_x)),
                                   _batched(features, np.asarray(held_fake)),
                                   seed + salts.PREPARE,
                                   max_epochs=sampling.ratio_head_epochs)
  say(f"  ratio head: held-out logistic loss {head_info['held_out_losses'][0]:.4f} -> "
      f"{head_info['best_held_out_loss']:.4f}, epoch {head_info['best_epoch']} of "
      f"{head_info['epochs_run']} kept ({time.monotonic() - trained:.0f} s)")
  info = {"classifier": {"epochs": sampling.ratio_classifier_epochs,
                         "train_examples": len(train_x),
                         "held_out_accuracy": accuracy,
                         "seconds": trained - started},
          "head": {**head_info, "width": _HEAD_WIDTH, "train_examples": 2 * len(real),
                   "seconds": time.monotonic() - trained}}
  return class_ratio_network(classifier, head), info


def load_network(path, flag="--sampling.prepared_dir"):
  """The class-ratio network saved at `path`."""
  try:
    return keras.models.load_model(path, compile=False)
  except (OSError, ValueError, TypeError) as e:
    raise ConfigError(f"{flag}: {path} is not a readable class-ratio network "
                      f"({str(e).strip().splitlines()[0][:200]})") from e
