"""What the command line shows: quiet start-up, progress lines that fit the terminal,
and a graceful Ctrl-C."""
