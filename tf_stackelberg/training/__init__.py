"""Training the game: distribution strategy, input, the run and its checkpoints, the
run directory's settings, the training loop. What is done with a trained run lives
above, in `tf_stackelberg.app`."""
