"""Latent-space MCMC for trained GANs: energies, samplers and their engine.

* `sample`: `sample_latents(sampler, model, num_samples, num_steps, seed,
  settings)`, the one entry point used by the command line, the Python API
  and the exported `mcmc_sample` endpoint; `SampleResult`.
* `energy`: `E(z, k) = -log p0(z) - d_c(G_k(z))` and `LatentModel`, the GAN
  as the samplers see it; `calibration`: `calibrate(logit_fn, real, fake)`.
* `settings`: `SamplerSettings` (defaults from `config.sections`) and
  `min_num_steps(sampler, settings)`, the smallest step budget of a sampler;
  `budget`: `evaluations_per_chain` and `steps_for_budget`, the cost of a run
  in evaluations of `G` and `D` and the steps a budget of them buys;
  `registry`: `SAMPLERS` and the `Sampler` record each module of `samplers`
  (`wl`, `rep`, `ddls`, `mh`, `isir`, `none`) registers: how it runs, its smallest
  step budget, its phases and cost, its health checks.
* `wang_landau`: the adaptive Wang-Landau / SAMC kernel (`WangLandau`);
  `energy_bins`: its bins, bias lookup and importance weights; `step_size`:
  its step-size rule; `checks`: the checks of the kernels' arguments;
  `samplers/wl.py`: the `'wl'` sampler, with the rules that set its bins from
  a warm-up and the health checks of its energy range.
* `joint`: Metropolis-Hastings moves of the generator index; `isir`: the
  i-SIR kernel (`ImportanceResampling`) of the `'isir'` sampler.
* `engine`: the compiled, chunked chain loop; `chains`: the `Chains` a
  sampler runs kernels on, described by a `KernelSpec`;
  `sharding`: the chains sharded over the replicas of a `tf.distribute`
  strategy, with the results of one device;
  `estimators`: weighted reservoirs and resampling; `diagnostics`: what a run
  reports, and `health_problems`, the signs of a failed run; `unnest`:
  reading fields of nested kernel results.
"""

from tf_stackelberg.sampling.budget import evaluations_per_chain
from tf_stackelberg.sampling.budget import steps_for_budget
from tf_stackelberg.sampling.calibration import calibrate
from tf_stackelberg.sampling.calibration import fit_calibration
from tf_stackelberg.sampling.diagnostics import health_problems
from tf_stackelberg.sampling.energy import LatentModel
from tf_stackelberg.sampling.energy import make_energy_fn
from tf_stackelberg.sampling.energy import standard_normal_log_prob
from tf_stackelberg.sampling.energy_bins import energy_to_bin
from tf_stackelberg.sampling.energy_bins import importance_log_weights
from tf_stackelberg.sampling.estimators import weighted_resample
from tf_stackelberg.sampling.isir import ImportanceResampling
from tf_stackelberg.sampling.joint import GeneratorProposal
from tf_stackelberg.sampling.joint import JointGeneratorKernel
from tf_stackelberg.sampling.joint import JointGeneratorResults
from tf_stackelberg.sampling.joint import propose_generator
from tf_stackelberg.sampling.registry import Sampler
from tf_stackelberg.sampling.registry import SAMPLERS
from tf_stackelberg.sampling.sample import ChainSnapshot
from tf_stackelberg.sampling.sample import sample_latents
from tf_stackelberg.sampling.sample import SampleResult
from tf_stackelberg.sampling.samplers.ddls import make_ddls_kernel
from tf_stackelberg.sampling.samplers.mh import IndependenceProposal
from tf_stackelberg.sampling.samplers.mh import make_mh_kernel
from tf_stackelberg.sampling.samplers.rep import make_rep_kernel
from tf_stackelberg.sampling.samplers.wl import energy_range_from_warmup
from tf_stackelberg.sampling.samplers.wl import target_bin_probs_from_warmup
from tf_stackelberg.sampling.settings import min_num_steps
from tf_stackelberg.sampling.settings import SamplerSettings
from tf_stackelberg.sampling.wang_landau import gain_schedule
from tf_stackelberg.sampling.wang_landau import make_mala_kernel
from tf_stackelberg.sampling.wang_landau import WangLandau
from tf_stackelberg.sampling.wang_landau import WangLandauResults

__all__ = [
    'ChainSnapshot',
    'GeneratorProposal',
    'ImportanceResampling',
    'IndependenceProposal',
    'JointGeneratorKernel',
    'JointGeneratorResults',
    'LatentModel',
    'SAMPLERS',
    'SampleResult',
    'Sampler',
    'SamplerSettings',
    'WangLandau',
    'WangLandauResults',
    'calibrate',
    'energy_range_from_warmup',
    'energy_to_bin',
    'evaluations_per_chain',
    'fit_calibration',
    'gain_schedule',
    'health_problems',
    'importance_log_weights',
    'make_ddls_kernel',
    'make_energy_fn',
    'make_mala_kernel',
    'make_mh_kernel',
    'make_rep_kernel',
    'min_num_steps',
    'propose_generator',
    'sample_latents',
    'standard_normal_log_prob',
    'steps_for_budget',
    'target_bin_probs_from_warmup',
    'weighted_resample',
]
