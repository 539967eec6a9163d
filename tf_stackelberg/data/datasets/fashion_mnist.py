"""`--data.dataset=fashion_mnist`: Fashion-MNIST, 28x28x1 (docs/design.md section
11.1)."""

from tf_stackelberg.data.datasets.mnist import load_digits
from tf_stackelberg.data.offline.builders import FASHION_MNIST_CLASSES
from tf_stackelberg.data.registry import DATASETS


@DATASETS.register("fashion_mnist")
def fashion_mnist(config):
  """Fashion-MNIST from `--data.source`."""
  return load_digits(config, "fashion_mnist", FASHION_MNIST_CLASSES, "Fashion-MNIST")
