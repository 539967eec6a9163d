"""The latent samplers, one module each, registered in `registry.SAMPLERS`."""
