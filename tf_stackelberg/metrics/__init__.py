"""Evaluation metrics as plain functions of samples (or of accumulated counts)."""
