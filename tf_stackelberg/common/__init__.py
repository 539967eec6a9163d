"""Plumbing shared by every part of the package: errors, registries, files, JSON."""
