"""The command line: flag checks before any work, modes, exit codes, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, run_cli

TINY = ["--train_steps=200", "--eval_every=100", "--steps_per_execution=50",
        "--eval_samples=1000"]


@pytest.mark.parametrize("flag, message", [
    ("--batch_size=-4", "--batch_size must be positive"),
    ("--dataset=spiral", "--dataset"),
    ("--update_order=random", "--update_order"),
    ("--num_generators=0", "--num_generators must be positive"),
    ("--train_steps=250", "--train_steps=250 must be a multiple of --eval_every"),
    ("--generator_hidden=32,x", "--generator_hidden"),
    ("--no_such_flag=1", "no_such_flag"),
])
def test_bad_flags_are_rejected_before_any_work(tmp_path, flag, message):
  model_dir = tmp_path / "run"
  result = run_cli(f"--model_dir={model_dir}", *TINY, flag)
  assert result.returncode != 0
  assert message in result.stderr, result.stderr
  assert not model_dir.exists()  # nothing was created


def test_batch_must_divide_over_replicas(tmp_path):
  result = run_cli(f"--model_dir={tmp_path / 'run'}", *TINY, "--batch_size=63",
                   "--cpu_replicas=2")
  assert result.returncode == 2
  assert "--batch_size=63 is not divisible by the 2 replicas" in result.stderr


def test_eval_and_export_need_a_trained_run(tmp_path):
  for mode in ("eval", "export"):
    result = run_cli(f"--model_dir={tmp_path / 'empty'}", f"--mode={mode}")
    assert result.returncode == 2
    assert "holds no trained run" in result.stderr


def test_flagfile_then_overrides(tmp_path):
  flagfile = tmp_path / "run.cfg"
  flagfile.write_text(f"--model_dir={tmp_path / 'run'}\n--num_generators=3\n"
                      "--batch_size=32\n" + "\n".join(TINY) + "\n")
  run_cli(f"--flagfile={flagfile}", "--batch_size=16", check=True)
  with open(tmp_path / "run" / "flags.json") as f:
    resolved = json.load(f)
  assert resolved["num_generators"] == 3  # from the flagfile
  assert resolved["batch_size"] == 16  # the command line wins
  assert resolved["learning_rate"] == 2e-4  # the default
  # eval takes the model settings from the run; a conflicting model flag is refused.
  result = run_cli(f"--model_dir={tmp_path / 'run'}", "--mode=eval", check=True)
  assert "modes:" in result.stdout
  result = run_cli(f"--model_dir={tmp_path / 'run'}", "--mode=eval",
                   "--num_generators=5")
  assert result.returncode == 2 and "--num_generators: run has 3" in result.stderr


def _wait_for_checkpoint(model_dir, process, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")):
      return
    if process.poll() is not None:
      raise AssertionError("training ended before it could be killed")
    time.sleep(0.2)
  raise AssertionError("no checkpoint appeared")


def _generator_weights(model_dir):
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if "optimizer" in n or n.startswith(("generator/", "discriminator/"))}


def test_sigkill_then_restart_resumes_from_last_checkpoint(tmp_path):
  args = ["--train_steps=1500", "--eval_every=250", "--steps_per_execution=50",
          "--eval_samples=1000", "--keep_checkpoints=10"]
  killed = str(tmp_path / "killed")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen(
      [sys.executable, "-m", "tf_stackelberg.main", f"--model_dir={killed}", *args],
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    _wait_for_checkpoint(killed, process)
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  state = tf.train.get_checkpoint_state(os.path.join(killed, "checkpoints"))
  killed_at = int(state.model_checkpoint_path.rsplit("-", 1)[1])
  assert killed_at < 1500  # it really was interrupted

  resumed = run_cli(f"--model_dir={killed}", *args, check=True)
  assert f"Resuming {killed} from step {killed_at}" in resumed.stdout
  whole = str(tmp_path / "whole")
  run_cli(f"--model_dir={whole}", *args, check=True)
  # Same seed, same run, interrupted or not.
  expected, got = _generator_weights(whole), _generator_weights(killed)
  assert expected.keys() == got.keys() and expected
  for name in expected:
    np.testing.assert_array_equal(expected[name], got[name], err_msg=name)
  with open(os.path.join(killed, "metrics.json")) as f:
    assert json.load(f)["step"] == 1500


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
  histories = {}
  for replicas in (1, 2):
    model_dir = tmp_path / f"replicas{replicas}"
    result = run_cli(f"--model_dir={model_dir}", f"--cpu_replicas={replicas}", *TINY,
                     check=True)
    assert f"Training on {replicas} replica" in result.stdout
    with open(model_dir / "eval_history.json") as f:
      histories[replicas] = json.load(f)
  assert [h["step"] for h in histories[2]] == [100, 200]
  # Losses are divided by the global batch, so the reported losses of a 2-replica
  # run match a 1-replica run's (the latents differ, hence the tolerance); summing
  # per-replica means instead would double them.
  for name in ("d_loss", "g_loss", "d_real_loss"):
    ratio = histories[2][-1][name] / histories[1][-1][name]
    assert 0.75 < ratio < 1.33, (name, ratio)
