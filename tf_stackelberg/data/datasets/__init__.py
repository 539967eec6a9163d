"""One module per registered dataset."""
