"""A SIGTERM whose unwinding hangs still ends the process in bounded time, with its
staging folder removed (console/interrupt.py, the forced exit)."""

import os
import signal
import subprocess
import sys
import time

from conftest import REPO


def test_a_sigterm_that_cannot_unwind_exits_143_and_removes_the_staging_folder(tmp_path):
  out = tmp_path / "samples"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
  process = subprocess.Popen(
      [sys.executable, os.path.join(REPO, "tests", "scripts", "stuck_after_sigterm.py"),
       str(out), "1.0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)
  try:
    staging = process.stdout.readline().strip()
    assert os.path.isdir(staging) and ".tmp-" in staging, staging
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    status = process.wait(timeout=60)
    waited = time.monotonic() - start
  finally:
    if process.poll() is None:
      process.kill()
  err = process.stderr.read()
  assert status == 143, err
  assert "did not unwind within 1 s and stopped at once" in err, err
  assert not os.path.exists(staging) and not out.exists()
  assert 1.0 <= waited < 30, waited  # the deadline, not the 120 s sleep
