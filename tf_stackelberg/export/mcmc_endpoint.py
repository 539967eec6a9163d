"""The `mcmc_sample(n, steps, seed)` serving endpoint: Wang-Landau latent sampling.

`sample_latents` (the command line's sampler) plans its run in Python: warm-up length,
energy range, chunks. A serving signature instead takes `n` and `steps` as tensors, so
the endpoint fixes what needs planning when the model is exported: the energy range of
the bins comes from a warm-up run at export time and the discriminator calibration from
held-out data, both stored as constants. At serving time the chains run in one
`tf.while_loop`: `num_chains` chains over `(k, z)` (the generator index moves by its
own Metropolis-Hastings step) with a Wang-Landau bias over the fixed bins; `n` draws are
then resampled from the final states by their importance weights `exp(theta[J(E)])`,
so the output targets `exp(-E)`. The number of chains is fixed when exporting (the
kernel's bias update needs it statically); `n` larger than it repeats states.
"""

import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.sampling.energy import make_energy_fn
from tf_stackelberg.sampling.joint import JointGeneratorKernel
from tf_stackelberg.sampling.wang_landau import (WangLandau, importance_log_weights,
                                                 weighted_resample)

INPUT_SIGNATURE = [tf.TensorSpec([], tf.int32, name="n"),
                   tf.TensorSpec([], tf.int32, name="steps"),
                   tf.TensorSpec([2], tf.int32, name="seed")]


def make_mcmc_sample_fn(generate_fn, logit_fn, latent_dim, num_generators,
                        energy_range, calibration=None, num_bins=50, step_size=0.01,
                        t0=300.0, num_adaptation_steps=320, num_chains=1000):
  """Returns `mcmc_sample(n, steps, seed) -> {'samples', 'generator', 'z'}`.

  Args:
    generate_fn: `(z, k) -> x`.
    logit_fn: `x -> [B]` discriminator logits.
    latent_dim: dimension of z.
    num_generators: K.
    energy_range: `(E_lo, E_hi)` of the Wang-Landau bins.
    calibration: optional `(a, b)` of the calibrated logit.
    num_bins, step_size, t0: Wang-Landau settings (`--wl_bins`, `--mcmc_step_size`,
      `--wl_t0`).
    num_adaptation_steps: steps during which the step size adapts.
    num_chains: chains run per call (static).
  """
  energy_fn = make_energy_fn(generate_fn, logit_fn, calibration)
  lo, hi = (float(e) for e in energy_range)

  def make_wl(energy):
    return WangLandau(energy, lo, hi, num_bins=num_bins, step_size=step_size,
                      bias_gain_t0=t0, num_adaptation_steps=num_adaptation_steps)

  def mcmc_sample(n, steps, seed):
    z_seed, k_seed, chain_seed, pick_seed = tfp.random.split_seed(
        tf.cast(seed, tf.int32), n=4, salt="mcmc_sample")
    z = tf.random.stateless_normal([num_chains, latent_dim], z_seed)
    k = tf.random.stateless_uniform([num_chains], k_seed, 0, num_generators,
                                    dtype=tf.int32)
    kernel = JointGeneratorKernel(energy_fn, num_generators, make_wl)
    state = [k, z]
    results = kernel.bootstrap_results(state)

    def body(i, state, results):
      step_seed = tf.random.experimental.stateless_fold_in(chain_seed, i)
      state, results = kernel.one_step(state, results, seed=step_seed)
      return i + 1, state, results

    _, state, results = tf.while_loop(lambda i, *_: i < steps, body,
                                      (tf.constant(0), state, results))
    k, z = weighted_resample(state, importance_log_weights(results), n, pick_seed)
    return {"samples": generate_fn(z, k), "generator": k, "z": z}

  return mcmc_sample
