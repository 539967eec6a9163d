"""The chains of one sampling run: what a sampler works with.

`Chains` holds the model's energy, the settings, the initial states and the
seeds of one run of `sample_latents`, and runs phases of kernels on the
chains through the execution engine (`engine.Engine`). A phase's kernel is
described by a `KernelSpec`, built anew inside every compiled call, with or
without moves of the generator index (`joint`). A sampler
(`tf_stackelberg.sampling.samplers`) returns its `Draws`, made of the
`Phase`s it ran.
"""

import collections
import dataclasses
from typing import Callable, Optional

import tensorflow as tf
import tensorflow_probability as tfp

from tf_stackelberg.common import salts
from tf_stackelberg.models.generator_prior import sample_generator_index
from tf_stackelberg.sampling.engine import current_energy
from tf_stackelberg.sampling.engine import PhaseRun
from tf_stackelberg.sampling.engine import stateless_seed
from tf_stackelberg.sampling.joint import JointGeneratorKernel

__all__ = [
    'Chains',
    'Draws',
    'KernelSpec',
    'Phase',
    'Seeds',
]


class Phase(
    collections.namedtuple('Phase', PhaseRun._fields + (
        'num_steps', 'num_evaluations', 'gradient'))):
  """What one phase of a sampler left behind: its `engine.PhaseRun` and cost.

  Attributes:
    state, results, initial_energy, energies, acceptance, generator_changed,
      reservoir: those of the `engine.PhaseRun`.
    num_steps: steps of the phase.
    num_evaluations: latent points passed through `G` and `D`, bootstrap and
      generator moves included.
    gradient: whether those evaluations back-propagate.
  """
  __slots__ = ()


class Draws(
    collections.namedtuple('Draws', [
        'z', 'k', 'energy', 'phases', 'bins', 'step_size', 'extra'])):
  """What a sampler returns.

  Attributes:
    z: float `[num_samples, latent_dim]` latents.
    k: int32 `[num_samples]` generator indices.
    energy: float `[num_samples]`, `E(z, k)`.
    phases: tuple of `Phase`s run (the last is the main one; empty for a
      sampler without chains).
    bins: `(E_lo, E_hi)` of the reported energy histogram, or `None` for
      equal bins between the extremes of the main phase.
    step_size: float scalar, the final step size (0 without a step).
    extra: `dict` of further diagnostics.
  """
  __slots__ = ()


class Seeds(
    collections.namedtuple('Seeds', ['z', 'k', 'warmup', 'chain',
                                     'resample'])):
  """The stateless seeds of one run: initial `z` and `k`, phases, resampling."""
  __slots__ = ()


@dataclasses.dataclass(frozen=True)
class KernelSpec:
  """How to build the kernel of a phase over the chain state.

  The engine builds the kernel inside every compiled call (`build`), from
  the tensors of the call's `kernel_args`: the generator indices of chains
  of fixed `k`, then the arguments of the factories.

  Attributes:
    energy_fn: `(z, k) -> [chains]`, the model's energy.
    num_generators: `K`.
    joint: whether the state is `[k, z]` (else `z`, with a fixed `k`).
    generator_move_every: steps between generator moves of a joint state.
    make_latent_kernel: callable `(energy_fn_of_z, *args) ->
      TransitionKernel` over `z`.
    make_joint_kernel: optional callable `(energy_fn, num_generators,
      *args) -> TransitionKernel` over `[k, z]`, for samplers whose
      proposals move `k` themselves; without it a joint state alternates
      generator moves with the latent kernel (`JointGeneratorKernel`).
    cross_chain: the kernel pools statistics over all chains in its steps
      (a shared bias, a mean acceptance); the factories then take the
      keyword argument `shard`.
  """
  energy_fn: Callable
  num_generators: int
  joint: bool
  generator_move_every: int
  make_latent_kernel: Callable
  make_joint_kernel: Optional[Callable] = None
  cross_chain: bool = False

  def build(self, kernel_args, shard=None):
    """The `TransitionKernel` of `kernel_args = (k_fixed, *args)`.

    Args:
      kernel_args: tuple of the int32 `[chains]` generator indices of chains
        of fixed `k`, then the factories' arguments.
      shard: the `sharding.ChainShard` of the replica building the kernel,
        or `None` on one device; the energy is then evaluated on the
        replica's rows only.

    Returns:
      The `TransitionKernel`.
    """
    k_fixed, args = kernel_args[0], tuple(kernel_args[1:])
    energy_fn = self.energy_fn
    if shard is not None:
      energy_fn = shard.local_energy_fn(energy_fn)
    options = dict(shard=shard) if self.cross_chain else {}
    if not self.joint:
      return self.make_latent_kernel(lambda z: energy_fn(z, k_fixed), *args,
                                     **options)
    if self.make_joint_kernel is not None:
      return self.make_joint_kernel(energy_fn, self.num_generators, *args,
                                    **options)
    return JointGeneratorKernel(
        energy_fn, self.num_generators,
        lambda energy_fn_of_z: self.make_latent_kernel(energy_fn_of_z, *args,
                                                       **options),
        generator_move_every=self.generator_move_every)


class Chains(object):
  """The chains of one sampling run and the kernels run on them.

  The chains start from `z ~ p0` (the model's prior) and a generator index
  `k ~ p(k)` (uniform unless the model says otherwise), drawn from the run's
  seed: the generator's own samples. Their energy is the model's at the
  temperature `settings.temperature` (`LatentModel.tempered`; `model` is the
  tempered model). With `joint` (the setting, and more
  than one generator) the state is `[k, z]` and the generator index moves
  too; otherwise the state is `z` and every chain keeps its `k`.

  Args:
    model: `energy.LatentModel`.
    settings: `settings.SamplerSettings`.
    num_chains: number of chains (int, or int32 scalar `Tensor` in a graph).
    num_steps: the run's budget of transitions per chain (int, or int32
      scalar `Tensor` in a graph).
    seed: stateless seed of the run, int32 or int64 `[2]`.
    engine: `engine.Engine`.
  """

  def __init__(self, model, settings, num_chains, num_steps, seed, engine):
    # `settings.temperature` tempers the discriminator term of every kernel.
    model = model.tempered(settings.temperature)
    self.model = model
    self.settings = settings
    self.num_chains = num_chains
    self.num_steps = num_steps
    self.engine = engine
    self.energy_fn = model.energy_fn()
    self.joint = bool(settings.joint) and model.num_generators > 1
    self.seeds = Seeds(*tfp.random.split_seed(
        stateless_seed(seed), n=5, salt=salts.SAMPLE_LATENTS))
    z = model.prior.sample([num_chains, model.latent_dim], self.seeds.z,
                           dtype=model.dtype)
    k = sample_generator_index(num_chains, self.seeds.k, model.num_generators,
                               model.generator_log_prior)
    self.k_fixed = k
    self.initial_state = [k, z] if self.joint else z

  def split(self, state):
    """`(z, k)` of a chain state."""
    if self.joint:
      return state[1], state[0]
    return state, self.k_fixed

  def kernel_spec(self, make_latent_kernel, make_joint_kernel=None,
                  cross_chain=False):
    """The `KernelSpec` of these chains for the given factories."""
    return KernelSpec(
        energy_fn=self.energy_fn, num_generators=self.model.num_generators,
        joint=self.joint,
        generator_move_every=self.settings.generator_move_every,
        make_latent_kernel=make_latent_kernel,
        make_joint_kernel=make_joint_kernel, cross_chain=cross_chain)

  def run(self, make_latent_kernel, state, seed, num_steps, *, kernel_args=(),
          make_joint_kernel=None, steps_before=0, collection=None,
          gradient=True, cross_chain=False, evaluations_per_step=1):
    """Runs one phase of `num_steps` transitions from `state`.

    Args:
      make_latent_kernel: see `KernelSpec`.
      state: the chains' states.
      seed: stateless seed of the phase.
      num_steps: transitions (positive).
      kernel_args: tuple of `Tensor`s passed on to the kernel factories.
      make_joint_kernel: see `KernelSpec`.
      steps_before: steps of earlier phases, for the progress report.
      collection: optional `engine.Collection` feeding weighted reservoirs.
      gradient: whether the kernel's evaluations back-propagate.
      cross_chain: whether the kernel pools statistics over all chains in
        its steps (a shared bias, a mean acceptance); its factories then
        take the keyword argument `shard` (see `KernelSpec`).
      evaluations_per_step: latent points the kernel evaluates per chain and
        step (generator moves aside), for the cost count.

    Returns:
      `Phase`.
    """
    static_steps = tf.get_static_value(num_steps)
    if static_steps is not None and int(static_steps) < 1:
      raise ValueError(f'`num_steps` must be positive, got {static_steps}.')
    spec = self.kernel_spec(make_latent_kernel, make_joint_kernel, cross_chain)
    phase_run = self.engine.run(spec, (self.k_fixed,) + tuple(kernel_args),
                                state, seed, num_steps,
                                steps_before=steps_before,
                                collection=collection)
    moves = 0
    if self.joint and make_joint_kernel is None:
      moves = -(-num_steps // self.settings.generator_move_every)
    return Phase(**phase_run._asdict(), num_steps=num_steps,
                 num_evaluations=self.num_chains * (
                     1 + evaluations_per_step * num_steps + moves),
                 gradient=gradient)

  def final_states(self, make_latent_kernel, *, make_joint_kernel=None,
                   gradient=True, step_size=0., evaluations_per_step=1):
    """Runs all `num_steps` steps and returns the final states, unweighted.

    Args:
      make_latent_kernel: see `KernelSpec`.
      make_joint_kernel: see `KernelSpec`.
      gradient: whether the kernel's evaluations back-propagate.
      step_size: the step size to report.
      evaluations_per_step: see `run`.

    Returns:
      `Draws`.
    """
    phase = self.run(make_latent_kernel, self.initial_state, self.seeds.chain,
                     self.num_steps, make_joint_kernel=make_joint_kernel,
                     gradient=gradient,
                     evaluations_per_step=evaluations_per_step)
    z, k = self.split(phase.state)
    return Draws(z, k, current_energy(phase.results), phases=(phase,),
                 bins=None,
                 step_size=tf.constant(step_size, self.model.dtype),
                 extra={})
