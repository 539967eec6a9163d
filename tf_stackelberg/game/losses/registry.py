"""The loss-family registry: `@LOSSES.register(name)` on a `LossConfig -> LossFamily`
builder, one module per family in `tf_stackelberg/game/losses/`."""

from tf_stackelberg.common.registry import Registry

LOSSES = Registry("loss family", package="tf_stackelberg.game.losses",
                  flag="--loss.family")
