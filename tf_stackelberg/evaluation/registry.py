"""The evaluator registry: `@EVALUATORS.register(name)` on a builder
`(config, data_source, num_generators) -> Evaluator`, one module per evaluator in
`tf_stackelberg/evaluation/evaluators/`."""

from tf_stackelberg.common.registry import Registry

EVALUATORS = Registry("evaluator", package="tf_stackelberg.evaluation.evaluators",
                      flag="--eval.evaluators")
