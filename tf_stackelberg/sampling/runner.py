"""Former module of `sample_latents`, kept so that existing imports work.

The sampling entry point now lives in `sample` (and is exported by the
package); the chain loop is in `driver`, the estimators in `estimators`, the
diagnostics in `diagnostics` and the samplers in `samplers`.
"""

from tf_stackelberg.sampling.registry import SAMPLERS
from tf_stackelberg.sampling.sample import sample_latents
from tf_stackelberg.sampling.sample import SampleResult

__all__ = [
    'SAMPLERS',
    'SampleResult',
    'sample_latents',
]
