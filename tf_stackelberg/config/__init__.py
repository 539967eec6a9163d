"""Configuration: sections with defaults and checks, flags, and resolved settings."""
