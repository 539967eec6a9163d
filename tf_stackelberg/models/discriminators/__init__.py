"""One module per registered discriminator architecture."""
