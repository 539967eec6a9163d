"""Export of trained models for serving."""
