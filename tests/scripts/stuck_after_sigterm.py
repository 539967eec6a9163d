"""Holds a staging folder, then, on SIGTERM, unwinds into a lock it already holds:
the shape of an exception raised inside a library's locked section."""

import sys
import threading
import time

from tf_stackelberg.common import files
from tf_stackelberg.console import interrupt

interrupt.FORCED_EXIT_AFTER_S = float(sys.argv[2])
interrupt.terminate_by_exception()
lock = threading.Lock()
with files.staged_directory(sys.argv[1], "--sampling.output_dir") as staging:
  lock.acquire()
  try:  # SIGTERM lands in this block: while printing, or sleeping
    print(staging, flush=True)
    time.sleep(120)
  finally:
    lock.acquire()  # never returns: the lock is held by this very thread
