"""The README's sequence, as a user types it: relative paths from a working directory
of their own, through the command line.

Train (stopped by SIGTERM, then resumed), evaluate the latest and every checkpoint,
export, sample (once stopped by SIGTERM), train again, and read a copied run
directory. Every path on these command lines is relative to the working directory,
which is not the repository.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

RUN = "runs/r"
TRAIN = ["--flagfile=configs/mog_ring.cfg", f"--model_dir={RUN}",
         "--trainer.train_steps=400", "--eval.every=100",
         "--trainer.steps_per_execution=20", "--eval.num_samples=1000"]
SAMPLE = ["--mode=sample", f"--model_dir={RUN}", "--sampling.num_samples=200"]


def _env():
  # The checkout's package, whatever the working directory.
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
              PYTHONPATH=os.pathsep.join(filter(None, [REPO,
                                                       os.environ.get("PYTHONPATH")])))


def _cli(cwd, *args, status=0):
  result = subprocess.run([sys.executable, "-m", "tf_stackelberg.main", *args],
                          cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == status, (result.stdout, result.stderr)
  assert "Traceback" not in result.stderr, result.stderr
  return result


def _start(cwd, *args):
  return subprocess.Popen([sys.executable, "-m", "tf_stackelberg.main", *args],
                          cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process, what, timeout=300):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if condition():
      return
    if process.poll() is not None:
      raise AssertionError(f"the process ended before {what}: "
                           f"{process.communicate()}")
    time.sleep(0.05)
  process.kill()
  raise AssertionError(f"timed out waiting for {what}")


def _terminate(process):
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=300)
  return process.returncode, out, err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A working directory outside the repository, with the config beside it."""
  path = tmp_path_factory.mktemp("user")
  shutil.copytree(os.path.join(REPO, "configs"), path / "configs")
  return path


def test_the_quick_start_sequence_with_relative_paths(workdir):
  ckpts = workdir / RUN / "checkpoints"

  # Train, stopped by SIGTERM after the first checkpoint: the steps since it are
  # saved too, and the exit status says SIGTERM.
  process = _start(workdir, *TRAIN)
  _wait_for(lambda: glob.glob(str(ckpts / "ckpt-100.index")), process,
            "the first checkpoint")
  status, _, err = _terminate(process)
  assert status == 143, err
  assert "error:" not in err and "Traceback" not in err, err
  stopped = int(err.split("Stopped at step ")[1].split()[0])
  assert stopped >= 100 and stopped % 20 == 0, err
  assert (ckpts / f"ckpt-{stopped}.index").exists()

  # The same command resumes; again once trained, it only evaluates.
  resumed = _cli(workdir, *TRAIN)
  assert f"Resuming {RUN} from step {stopped}." in resumed.stdout
  again = _cli(workdir, *TRAIN)
  assert f"{RUN} is already trained to step 400" in again.stdout
  # That the resumed weights equal those of a run never stopped, from a checkpoint
  # off the evaluation grid, is checked in-process by tests/test_training.py and
  # after a SIGKILL by tests/test_run_lock.py.

  # The other modes read the run back.
  # (Evaluating the latest checkpoint alone is the copied run's check below.)
  every = _cli(workdir, f"--model_dir={RUN}", "--mode=eval", "--eval.checkpoints=all")
  steps = [int(line.split()[3].rstrip(":")) for line in every.stdout.splitlines()
           if line.startswith("Checkpoint at step ")]
  assert steps == sorted(steps) and steps[-1] == 400 and len(steps) >= 2, every.stdout
  exported = _cli(workdir, f"--model_dir={RUN}", "--mode=export")
  assert f"Exported step 400 of {RUN} to {RUN}/saved_model" in exported.stdout
  assert (workdir / RUN / "saved_model" / "saved_model.pb").exists()

  # Sampling stopped by SIGTERM leaves no staging folder and no output behind.
  process = _start(workdir, *SAMPLE, "--sampling.steps=200000",
                   "--sampling.output_dir=runs/stopped")
  _wait_for(lambda: glob.glob(str(workdir / "runs" / "stopped.tmp-*")), process,
            "the staging folder")
  time.sleep(1.0)
  status, _, err = _terminate(process)
  assert status == 143, err
  assert "terminated (SIGTERM)" in err and "Traceback" not in err, err
  assert not glob.glob(str(workdir / "runs" / "stopped*"))
  sampled = _cli(workdir, *SAMPLE, "--sampling.steps=40")
  assert f"Wrote {RUN}/samples_wl" in sampled.stdout
  assert (workdir / RUN / "samples_wl" / "samples.npz").exists()

  # A copied run directory restores from its new place, to the same evaluation.
  shutil.copytree(workdir / RUN, workdir / "runs" / "copy")
  (workdir / "runs" / "copy" / "eval_metrics_step400.json").unlink()  # made anew
  evaluated = _cli(workdir, "--model_dir=runs/copy", "--mode=eval")
  assert "Checkpoint at step 400:" in evaluated.stdout
  reports = [json.loads((workdir / d / "eval_metrics_step400.json").read_text())
             for d in (RUN, "runs/copy")]
  assert reports[0] == reports[1]
