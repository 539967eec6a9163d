"""The library the scripts in tools/ share.

A tool run as a script (`python tools/benchmark_scaling.py`) has tools/ first on its
import path, so it imports this package as `toolkit` (and the project as
`tf_stackelberg`, installed with `pip install -e .`) without touching `sys.path`:

  flagfiles    a flagfile read into a `Config` by the command line's own flags
  timing       the one timing protocol: warm-up calls, then timed rounds
  machine      the CPU a benchmark ran on and the load average
  children     a measurement run in a fresh process (or a loopback cluster of them)
  ports        free loopback ports for such workers
  chunk_clock  the compiled chunks of a `sample_latents` call, timed
  step_graph   the ops, multiply-adds and saved activations of a traced train step
  projection   a config's step on published accelerator figures
"""
