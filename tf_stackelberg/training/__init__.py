"""Running the game: distribution strategy, the run, the training loop."""
