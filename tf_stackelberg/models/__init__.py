"""Generator and discriminator architectures, registered by name, and the latent prior."""
