"""Latent-space MCMC for trained GANs: energies, samplers and their runner.

* `energy`: `E(z, k) = -log p0(z) - d_c(G_k(z))` and discriminator
  calibration.
* `wang_landau`: the adaptive Wang-Landau / SAMC kernel (`WangLandau`) and
  its importance weights.
* `baselines`: MH-GAN independence sampler, DDLS (unadjusted Langevin) and
  REP-GAN (MALA) on the same energy.
* `joint`: Metropolis-Hastings moves of the generator index.
* `runner`: `sample_latents`, the one entry point used by the command line
  and the exported model.
"""

from tf_stackelberg.sampling.baselines import IndependenceMetropolis
from tf_stackelberg.sampling.baselines import IndependenceMetropolisResults
from tf_stackelberg.sampling.baselines import make_ddls_kernel
from tf_stackelberg.sampling.baselines import make_mh_kernel
from tf_stackelberg.sampling.baselines import make_rep_kernel
from tf_stackelberg.sampling.baselines import UnadjustedLangevin
from tf_stackelberg.sampling.baselines import UnadjustedLangevinResults
from tf_stackelberg.sampling.energy import fit_calibration
from tf_stackelberg.sampling.energy import make_energy_fn
from tf_stackelberg.sampling.energy import standard_normal_log_prob
from tf_stackelberg.sampling.joint import joint_generator_step
from tf_stackelberg.sampling.joint import JointGeneratorKernel
from tf_stackelberg.sampling.joint import JointGeneratorResults
from tf_stackelberg.sampling.joint import propose_generator
from tf_stackelberg.sampling.runner import SampleResult
from tf_stackelberg.sampling.runner import sample_latents
from tf_stackelberg.sampling.runner import SAMPLERS
from tf_stackelberg.sampling.wang_landau import energy_range_from_warmup
from tf_stackelberg.sampling.wang_landau import energy_to_bin
from tf_stackelberg.sampling.wang_landau import gain_schedule
from tf_stackelberg.sampling.wang_landau import importance_log_weights
from tf_stackelberg.sampling.wang_landau import make_mala_kernel
from tf_stackelberg.sampling.wang_landau import WangLandau
from tf_stackelberg.sampling.wang_landau import WangLandauResults
from tf_stackelberg.sampling.wang_landau import weighted_resample

__all__ = [
    'IndependenceMetropolis',
    'IndependenceMetropolisResults',
    'JointGeneratorKernel',
    'JointGeneratorResults',
    'SAMPLERS',
    'SampleResult',
    'UnadjustedLangevin',
    'UnadjustedLangevinResults',
    'WangLandau',
    'WangLandauResults',
    'energy_range_from_warmup',
    'energy_to_bin',
    'fit_calibration',
    'gain_schedule',
    'importance_log_weights',
    'joint_generator_step',
    'make_ddls_kernel',
    'make_energy_fn',
    'make_mala_kernel',
    'make_mh_kernel',
    'make_rep_kernel',
    'propose_generator',
    'sample_latents',
    'standard_normal_log_prob',
    'weighted_resample',
]
