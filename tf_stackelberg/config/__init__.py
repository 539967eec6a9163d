"""Configuration: sections with defaults and checks, and the flags generated from them.

A leaf of the package: it imports nothing of the project but `common/`. The settings
of a run directory live in `tf_stackelberg.training.run_settings`, the registry-name
check in `tf_stackelberg.modes.names`.
"""
