"""The binned energy axis of Wang-Landau and the per-bin bias.

`[E_lo, E_hi]` is cut into `M` bins of equal width; `energy_to_bin` gives the
bin `J(E)` of an energy (energies outside the range fall into the end bins),
`energy_histogram` counts energies per bin, `lookup_bias` reads the bias
`theta[J]` of each chain's bin, and `importance_log_weights` turns the bias of
states drawn from the flattened target into the weights toward `exp(-E)`
(docs/design.md, sections 7.1 and 7.6).
"""

import tensorflow as tf

from tf_stackelberg.sampling.unnest import get_outermost

__all__ = [
    'energy_histogram',
    'energy_to_bin',
    'importance_log_weights',
    'lookup_bias',
]


def energy_to_bin(energy, energy_lo, energy_hi, num_bins):
  """Bin index `clip(floor((E - E_lo) / dE), 0, M - 1)` as int32.

  Non-finite energies go to the last bin (`+inf` and NaN) or the first
  (`-inf`), so the index is always valid for a gather.
  """
  energy = tf.convert_to_tensor(energy)
  dtype = energy.dtype
  lo = tf.cast(energy_lo, dtype)
  width = (tf.cast(energy_hi, dtype) - lo) / tf.cast(num_bins, dtype)
  position = tf.math.floor((energy - lo) / width)
  position = tf.where(tf.math.is_nan(position),
                      tf.cast(num_bins - 1, dtype), position)
  position = tf.clip_by_value(position, 0., tf.cast(num_bins - 1, dtype))
  return tf.cast(position, tf.int32)


def energy_histogram(energies, energy_lo, energy_hi, num_bins):
  """int64 `[num_bins]` counts of `J(E)` over all of `energies` (any shape)."""
  bins = energy_to_bin(tf.reshape(energies, [-1]), energy_lo, energy_hi,
                       num_bins)
  return tf.math.bincount(bins, minlength=num_bins, maxlength=num_bins,
                          dtype=tf.int64)


def lookup_bias(theta, bin_index):
  """`theta[J]` per chain for a shared `[M]` or per-chain `[C, M]` bias."""
  if theta.shape.rank == 1:
    return tf.gather(theta, bin_index)
  return tf.gather(theta, bin_index[..., tf.newaxis], batch_dims=1)[..., 0]



def importance_log_weights(theta_or_results, bin_index=None, normalize=True):
  """Log importance weights `theta[J(E(z))]` turning `pi_theta` into `pi`.

  For any fixed bias, `E_pi[f] = E_theta[w f] / E_theta[w]` with
  `w = exp(theta[J(E)])`, so self-normalised weights of states drawn from
  `pi_theta` estimate expectations under `pi ~ exp(-E)`.

  Args:
    theta_or_results: kernel results containing `WangLandauResults`
      (directly or nested), whose `bias` field (the bias of the current
      states) is used; or a bare bias `theta` (`[M]` or `[chains, M]`) with
      `bin_index`.
    bin_index: int `[chains]` bins of the states; required with a bare
      `theta`, and used with the results' `theta` if given with results.
    normalize: if `True` return self-normalised log weights (their
      `logsumexp` is 0).

  Returns:
    float `[chains]` log weights.
  """
  if hasattr(theta_or_results, '_fields'):
    if bin_index is None:
      log_w = get_outermost(theta_or_results, 'bias')
    else:
      log_w = lookup_bias(get_outermost(theta_or_results, 'theta'),
                           tf.cast(bin_index, tf.int32))
  else:
    if bin_index is None:
      raise ValueError('`bin_index` is required when passing a bare `theta`.')
    log_w = lookup_bias(tf.convert_to_tensor(theta_or_results),
                         tf.cast(bin_index, tf.int32))
  if normalize:
    log_w = log_w - tf.reduce_logsumexp(log_w)
  return log_w
