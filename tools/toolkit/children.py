"""A measurement run in a fresh process, or in a loopback cluster of them.

Some settings must be made before TensorFlow starts (logical CPU devices, the
multi-worker cluster of `TF_CONFIG`), so a tool measures each setting in a child: it
runs its own script again with `--child SPEC`, where SPEC is a JSON object that also
names the file the child writes its result to (`run_child` on the child's side). The
parent waits with a timeout and reads the result back, or the most telling line of
the child's log.
"""

import json
import os
import subprocess
import sys
import time

from toolkit.flagfiles import REPO
from toolkit.ports import free_ports


def run_child(spec_text, measure):
  """The child's side: `measure(spec)` of the JSON `spec_text`, written as JSON to
  the spec's `out`."""
  spec = json.loads(spec_text)
  result = measure(spec)
  from tf_stackelberg.common import files  # pylint: disable=import-outside-toplevel
  files.write_json(spec["out"], result)


def tail(path, lines=12):
  """The last `lines` lines of a log ('' if it cannot be read)."""
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      text = f.read().strip().splitlines()
  except OSError:
    return ""
  return "\n".join(text[-lines:])


def error_line(log):
  """The most telling line of a failed child's log (the last error-like one)."""
  lines = [l for l in tail(log, 60).splitlines() if l.strip()]
  for line in reversed(lines):
    if any(word in line for word in ("Error", "error:", "Exception")):
      return line.strip()[:300]
  return lines[-1].strip()[:300] if lines else "no output"


def launch(script, spec, work_dir, tag, timeout, workers=0):
  """Runs `script --child SPEC` (or a cluster of `workers` of them on loopback ports,
  `TF_CONFIG` set for each) from the repository root; returns the result of the child
  (of worker 0, with the other workers' `rate` as `other_worker_rates`), or
  {'error': ..., 'log': ...}.

  Args:
    script: the tool's own file.
    spec: what the child measures (JSON-serialisable dict; `out` is added).
    work_dir: where the results and logs go, as `TAG_INDEX.json` and `.log`.
    tag: names this child's files.
    timeout: seconds before the children are stopped.
    workers: 0 for one process outside any cluster.
  """
  procs, outs, logs = [], [], []
  addresses = [f"localhost:{p}" for p in free_ports(workers)] if workers else []
  for index in range(max(1, workers)):
    out = os.path.join(work_dir, f"{tag}_{index}.json")
    log = os.path.join(work_dir, f"{tag}_{index}.log")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    if workers:
      env["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                     "task": {"type": "worker", "index": index}})
    with open(log, "w", encoding="utf-8") as f:
      procs.append(subprocess.Popen(
          [sys.executable, os.path.abspath(script), "--child",
           json.dumps(dict(spec, out=out))], cwd=REPO, env=env, stdout=f,
          stderr=subprocess.STDOUT))
    outs.append(out)
    logs.append(log)
  deadline = time.monotonic() + timeout
  error = None
  # Polled together: a worker whose peer failed would wait for it until the timeout.
  while error is None and any(proc.poll() is None for proc in procs):
    if time.monotonic() > deadline:
      error = f"timed out after {timeout:.0f} s"
    time.sleep(0.2)
    for proc, log in zip(procs, logs):
      if error is None and proc.poll():
        error = f"exit {proc.returncode}: {error_line(log)}"
  for proc, log in zip(procs, logs):
    if error is None and proc.returncode:
      error = f"exit {proc.returncode}: {error_line(log)}"
  for proc in procs:  # only the processes started here
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  missing = [log for out, log in zip(outs, logs) if not os.path.exists(out)]
  if error is None and missing:
    error = f"no result written: {error_line(missing[0])}"
  if error is not None:
    return {"error": error, "log": tail(logs[0], 30)}
  results = []
  for out in outs:
    with open(out, encoding="utf-8") as f:
      results.append(json.load(f))
  if len(results) > 1:  # the other workers ran the same steps in lockstep
    results[0]["other_worker_rates"] = [r["rate"] for r in results[1:]]
  return results[0]
