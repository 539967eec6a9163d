"""Generator and discriminator architectures."""
from tf_stackelberg.models.discriminators import MLPDiscriminator, build_discriminator
from tf_stackelberg.models.ensemble import EnsembleBatchNorm, EnsembleDense, FanInUniform
from tf_stackelberg.models.generators import (EnsembleMLPGenerator, MultiBranchGenerator,
                                              build_generator, select_generator)
