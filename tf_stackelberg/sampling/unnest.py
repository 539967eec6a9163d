"""Reading and rewriting fields of nested kernel results.

TFP kernels that wrap another kernel keep its results in `inner_results`, and
`MetropolisHastings` keeps the results of the current state in
`accepted_results` (next to `proposed_results`, which describe the last
proposal and are never followed here). A field such as `target_log_prob` or
`is_accepted` therefore sits at a depth that depends on how the kernels are
composed. Every reader in this package goes through the functions below, which
are TFP's own traversal (`tensorflow_probability.python.internal.unnest`, the
module TFP publishes as `tfp.experimental.unnest`) with `None` as the default
for a missing field:

* `get_outermost(results, name)`: the first `name` found breadth-first from
  the outside, i.e. the value of the outermost kernel that reports it (e.g.
  the `is_accepted` of a `MetropolisHastings` step, or `energy` of a
  `WangLandau` kernel wrapped by a generator move);
* `get_innermost(results, name)`: the first found depth-first from the inside
  (e.g. the inner kernel's acceptance ratio under an adaptive wrapper);
* `replace_outermost(results, **fields)`: a copy with the outermost
  occurrence of each given field replaced; fields that do not occur are
  ignored.

Example:

```python
mala = tfp.mcmc.MetropolisAdjustedLangevinAlgorithm(target_log_prob_fn, 0.1)
results = mala.bootstrap_results(z)
get_outermost(results, 'target_log_prob')
# -> results.accepted_results.target_log_prob
get_outermost(results, 'theta')            # None
```
"""

from tensorflow_probability.python.internal import unnest as tfp_unnest

__all__ = [
    'get_innermost',
    'get_outermost',
    'replace_outermost',
]


def get_outermost(results, name, default=None):
  """The outermost `name` field of nested kernel results, or `default`."""
  if results is None:
    return default
  return tfp_unnest.get_outermost(results, name, default=default)


def get_innermost(results, name, default=None):
  """The innermost `name` field of nested kernel results, or `default`."""
  if results is None:
    return default
  return tfp_unnest.get_innermost(results, name, default=default)


def replace_outermost(results, **fields):
  """`results` with the outermost occurrence of each of `fields` replaced.

  Fields that occur nowhere in `results` are ignored.
  """
  updated, _ = tfp_unnest.replace_outermost(results, return_unused=True,
                                            **fields)
  return updated
