"""The generator prior p(k): how often a K-generator model uses each generator.

A model of K generators is the mixture `p_g(x) = sum_k p(k) p_k(x)`, with `p_k` the
distribution of `G_k(z)`, `z ~ p0`. `--model.generator_prior` names `p(k)`:

| name | p(k) |
|---|---|
| `uniform` (default) | 1 / K |
| `geometric2` | 2^k / (2^K - 1): each generator is used twice as often as the one before |

`geometric2` is the deliberately skewed mixture of the positive control of
docs/design.md section 14.6: the game trains every generator alike, and the prior
reweights the trained generators afterwards, so that the mixture over-produces what the
last generators make and a sampler that reads the discriminator has a known correction
to find (the uniform mixture of the same generators).

`StackelbergGAN.sample` and the latent samplers' initial states draw `k` from it
(`sample_generator_index`), and the latent energy adds `-log p(k)` (docs/design.md
section 5) so that moves of `k` target the right joint law. For the uniform prior
`generator_log_weights` returns None: the draws and energies are those of code that
knows no generator prior, number for number.

Example:
  log_w = generator_log_weights("geometric2", 4)  # log([1, 2, 4, 8] / 15)
  k = sample_generator_index(1000, tf.constant([0, 1]), 4, log_w)
"""

import math

import tensorflow as tf

__all__ = ["GENERATOR_PRIORS", "generator_log_weights", "sample_generator_index"]

GENERATOR_PRIORS = ("uniform", "geometric2")


def generator_log_weights(name, num_generators):
  """`log p(k)`, k = 0..K-1, as a tuple of floats, or None for the uniform prior.

  Args:
    name: one of `GENERATOR_PRIORS` (None means uniform).
    num_generators: K.

  Raises:
    ValueError: an unknown name.
  """
  if name in (None, "uniform") or num_generators == 1:
    return None
  if name == "geometric2":
    # log(2^k / (2^K - 1)), computed without forming 2^K for large K.
    log_total = num_generators * math.log(2.) + math.log1p(-2. ** -num_generators)
    return tuple(k * math.log(2.) - log_total for k in range(num_generators))
  raise ValueError(f"unknown generator prior {name!r}; known: "
                   f"{', '.join(GENERATOR_PRIORS)}")


def sample_generator_index(num_samples, seed, num_generators, log_weights=None):
  """int32 `[num_samples]` draws of `k ~ p(k)` with a stateless `seed`.

  Args:
    num_samples: number of draws (int or int32 scalar).
    seed: stateless seed `[2]`.
    num_generators: K.
    log_weights: `log p(k)` (`generator_log_weights`), or None for uniform, which
      draws exactly as `tf.random.stateless_uniform` over `[0, K)`.
  """
  if log_weights is None:
    return tf.random.stateless_uniform([num_samples], seed=seed, minval=0,
                                       maxval=num_generators, dtype=tf.int32)
  logits = tf.constant([log_weights], tf.float32)
  return tf.random.stateless_categorical(logits, num_samples, seed=seed,
                                         dtype=tf.int32)[0]
