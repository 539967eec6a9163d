"""Training data pipelines."""
from tf_stackelberg.data.mixtures import (MixtureSpec, draw_points, fixed_set, grid,
                                          make_dataset, ring, spec_from_config)
