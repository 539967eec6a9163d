"""Evaluators: one object per metric family, run on a model's sampling function."""
