"""The application layer: what the command-line modes and the tools do with a trained
run, above `training` (which only trains) and below `modes`.

* `latent`: the adapter from a restored `Run` to the latent samplers (the calibrated
  `LatentModel`, discriminator fine-tuning, the `SamplerSettings` of `--sampling.*`).
* `evaluation_reports`: `--mode=eval`'s evaluation of the latest or of every kept
  checkpoint, and the reports it writes.
"""
