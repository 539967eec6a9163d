"""The dataset registry: `@DATASETS.register(name)` on a `DataConfig -> DataSource`
builder, one module per dataset in `tf_stackelberg/data/datasets/`."""

from tf_stackelberg.common.registry import Registry

DATASETS = Registry("dataset", package="tf_stackelberg.data.datasets",
                    flag="--data.dataset")
