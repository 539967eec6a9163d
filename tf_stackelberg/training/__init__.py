"""Running the game: distribution strategy, training loop, checkpoints, evaluation."""
from tf_stackelberg.training.strategy import make_strategy
from tf_stackelberg.training.trainer import (Run, TrainingDivergedError, evaluate,
                                             seed_everything, train)
