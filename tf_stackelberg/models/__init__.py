"""Generator and discriminator architectures, registered by name."""
