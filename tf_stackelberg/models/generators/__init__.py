"""One module per registered generator architecture."""
