"""One module per registered evaluator."""
