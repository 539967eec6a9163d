"""TFDS builders that prepare the offline copies of MNIST, Fashion-MNIST and CIFAR-10
(the IDX files and the CIFAR-10 JPEG zip) into a TFDS cache, with the element spec of
the corresponding `tfds.load` datasets (docs/design.md section 11.1)."""
