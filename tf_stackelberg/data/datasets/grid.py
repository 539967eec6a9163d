"""`--data.dataset=grid`: a square grid of equal-weight Gaussian modes (docs/design.md
section 4)."""

from tf_stackelberg.data import mixtures
from tf_stackelberg.data.registry import DATASETS


@DATASETS.register("grid")
def grid(config):
  """`--data.grid_size`^2 modes, `--data.grid_spacing` apart, std `--data.grid_std`."""
  spec = mixtures.grid(config.grid_size, config.grid_spacing, config.grid_std)
  return mixtures.MixtureData(spec, config.size, config.shuffle)
