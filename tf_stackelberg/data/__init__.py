"""Training data: registered datasets that yield step-indexed batches."""
