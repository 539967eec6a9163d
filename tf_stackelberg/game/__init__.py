"""The K-generator game: loss families, the Keras model and its builder."""
