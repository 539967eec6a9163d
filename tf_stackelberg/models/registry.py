"""Architecture registries.

* `GENERATORS`: `@GENERATORS.register(name)` on `(ModelConfig, output_shape) ->
  keras.Model` mapping z `[B, d]` or `[K, B, d]` to `[K, B, *output_shape]`, with a
  `num_generators` attribute; one module per architecture in `models/generators/`.
* `DISCRIMINATORS`: `@DISCRIMINATORS.register(name)` on `(ModelConfig, input_shape,
  num_classes) -> keras.Model` mapping x `[N, *input_shape]` to (logits `[N]`, class
  logits `[N, num_classes]` or None); one module each in `models/discriminators/`.
"""

from tf_stackelberg.common.registry import Registry

GENERATORS = Registry("generator architecture",
                      package="tf_stackelberg.models.generators",
                      flag="--model.generator")
DISCRIMINATORS = Registry("discriminator architecture",
                          package="tf_stackelberg.models.discriminators",
                          flag="--model.discriminator")
