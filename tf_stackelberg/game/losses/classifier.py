"""The K-way generator-classifier term (docs/design.md section 1), added with weight
beta (`--loss.classifier_weight`) to BOTH players' losses whatever the loss family."""

import tensorflow as tf

from tf_stackelberg.game.losses.base import batch_mean


def classifier_loss(fake_class_logits, global_batch_size):
  """sum_k E CE(c(G_k(z)), k) of class logits `[K, B, K]`.

  D learns to tell generators apart and the generators learn to be told apart, which
  pushes them onto different modes.
  """
  num_games, batch = tf.shape(fake_class_logits)[0], tf.shape(fake_class_logits)[1]
  labels = tf.broadcast_to(tf.range(num_games)[:, None], [num_games, batch])
  per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=fake_class_logits)
  return tf.reduce_sum(batch_mean(per_example, global_batch_size))
