"""The K-way generator-classifier term (docs/design.md section 1), added with weight
beta (`--loss.classifier_weight`) to BOTH players' losses whatever the loss family."""

import tensorflow as tf

from tf_stackelberg.game.losses.base import batch_mean


def classifier_loss(fake_class_logits, global_batch_size):
  """sum_k E CE(c(G_k(z)), k) of class logits `[K, B, K]`.

  D learns to tell generators apart and the generators learn to be told apart, which
  pushes them onto different modes.
  """
  num_games = tf.shape(fake_class_logits)[0]
  # Cross-entropy written out: the sparse op's label-range Assert makes XLA log a
  # warning on every compilation.
  own_class = tf.one_hot(tf.range(num_games), num_games, dtype=fake_class_logits.dtype)
  per_example = -tf.reduce_sum(
      tf.nn.log_softmax(fake_class_logits) * own_class[:, None, :], axis=-1)
  return tf.reduce_sum(batch_mean(per_example, global_batch_size))
