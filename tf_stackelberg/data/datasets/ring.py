"""`--data.dataset=ring`: equal-weight Gaussian modes on a circle (docs/design.md
section 4)."""

from tf_stackelberg.data import mixtures
from tf_stackelberg.data.registry import DATASETS


@DATASETS.register("ring")
def ring(config):
  """`--data.ring_modes` modes of std `--data.ring_std` on a circle."""
  spec = mixtures.ring(config.ring_modes, config.ring_radius, config.ring_std)
  return mixtures.MixtureData(spec, config.size, config.shuffle)
