"""The K-generator game: losses, the Keras model and its builder."""
from tf_stackelberg.game import losses
from tf_stackelberg.game.builder import build_gan
from tf_stackelberg.game.stackelberg_gan import StackelbergGAN
