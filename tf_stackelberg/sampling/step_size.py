"""Step-size adaptation of the Wang-Landau kernel.

The step size of the inner kernel adapts on the log scale, multiplicatively,
toward a target acceptance probability, window by window, with a gain that
decays like `1 / sqrt(number of windows)` (diminishing adaptation); working
on `log h` keeps the step positive (docs/design.md, section 7.4).
"""

import tensorflow as tf

from tf_stackelberg.sampling.unnest import get_outermost

__all__ = [
    'acceptance_probability',
    'adapt_step_size',
]


def adapt_step_size(previous, mean_accept_prob, step, *, target_accept_prob,
                    num_adaptation_steps, adaptation_window, adaptation_rate):
  """The step-size rule of `WangLandau`, on the log scale, window by window.

  During the first `num_adaptation_steps` transitions, at the end of every
  window of `adaptation_window` steps, `log h` moves by
  `adaptation_rate / sqrt(n) * (mean_accept - target_accept_prob)`, with
  `mean_accept` the chain-mean acceptance probability averaged over the
  `n`-th window; afterwards `h` is fixed (docs/design.md, section 7.4).

  Args:
    previous: the `WangLandauResults` before the transition.
    mean_accept_prob: float scalar, the transition's acceptance probability
      averaged over all chains.
    step: int32 scalar, the (1-based) index of the transition.
    target_accept_prob: acceptance the step size is tuned to.
    num_adaptation_steps: transitions during which the step adapts.
    adaptation_window: steps per update.
    adaptation_rate: gain of the update.

  Returns:
    `dict` of the new `log_step_size`, `window_accept_sum`, `window_steps`
    and `num_windows` (fields of `WangLandauResults`).
  """
  dtype = previous.theta.dtype
  window_sum = previous.window_accept_sum + mean_accept_prob
  window_steps = previous.window_steps + 1
  window_done = window_steps >= adaptation_window
  adapt = window_done & (step <= num_adaptation_steps)
  num_windows = previous.num_windows + tf.cast(adapt, tf.int32)
  mean_accept = window_sum / tf.cast(window_steps, dtype)
  rate = (tf.cast(adaptation_rate, dtype) /
          tf.sqrt(tf.cast(tf.maximum(num_windows, 1), dtype)))
  log_step_size = previous.log_step_size
  return dict(
      log_step_size=tf.where(
          adapt,
          log_step_size + rate * (mean_accept - tf.cast(target_accept_prob,
                                                        dtype)),
          log_step_size),
      window_accept_sum=tf.where(window_done, tf.zeros_like(window_sum),
                                 window_sum),
      window_steps=tf.where(window_done, tf.zeros_like(window_steps),
                            window_steps),
      num_windows=num_windows)


def acceptance_probability(inner_results, like):
  """`min(1, exp(log_accept_ratio))` of a transition, of the dtype of `like`.

  1 for an inner kernel without a ratio (unadjusted moves), 0 for NaN.
  """
  log_ratio = get_outermost(inner_results, 'log_accept_ratio')
  if log_ratio is None:
    return tf.ones_like(like)
  prob = tf.exp(tf.minimum(tf.cast(log_ratio, like.dtype), 0.))
  return tf.where(tf.math.is_nan(prob), tf.zeros_like(prob), prob)
