"""Several replicas and several workers, each in fresh processes (devices and the
cluster are configured before TensorFlow starts): 2 logical CPU devices against 1,
and 2 worker processes on loopback with MultiWorkerMirroredStrategy, killed and
resumed (docs/design.md section 12)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO

SCRIPTS = os.path.join(REPO, "tests", "scripts")
STEPS = 100


def _env(**extra):
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **extra)


@pytest.fixture(scope="module")
def curves(tmp_path_factory):
  out = tmp_path_factory.mktemp("curves") / "curves.json"
  subprocess.run([sys.executable, os.path.join(SCRIPTS, "replica_curves.py"),
                  str(STEPS), str(out),
                  json.dumps({"model.num_generators": 3, "loss.classifier_weight": 1.0,
                              "game.shared_z": False})],
                 cwd=REPO, env=_env(), check=True, timeout=600)
  with open(out) as f:
    return json.load(f)


def test_two_replicas_give_the_one_replica_loss_curve(curves):
  """Same global batches, same latents, losses averaged over the global batch: the
  first 100 steps of a 2-replica game are the 1-replica game's to float rounding."""
  one, two = curves["one"], curves["two"]
  assert (one["replicas"], two["replicas"]) == (1, 2)
  for name in ("g_loss", "d_loss", "d_real_loss", "classifier_loss", "g_loss_0"):
    a, b = np.array(one["losses"][name]), np.array(two["losses"][name])
    assert a.shape == b.shape == (STEPS,)
    # float32 sums in another order drift by a few ulps per step; 100 Adam steps
    # keep them within 1e-4 of each other.
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=name)
  # The first step starts from identical weights and data: equal to rounding.
  assert abs(one["losses"]["d_loss"][0] - two["losses"]["d_loss"][0]) < 1e-6
  np.testing.assert_allclose(two["weights"], one["weights"], rtol=1e-3, atol=1e-4)


def test_per_replica_xla_follows_the_same_curve(curves):
  """XLA compiles each replica's forward and backward pass (the whole step cannot be
  compiled under distribution); it fuses and reorders float32 arithmetic, so the
  curve agrees to a looser tolerance than the uncompiled one."""
  one, xla = curves["one"], curves["two_xla"]
  assert xla["replicas"] == 2
  for name in ("g_loss", "d_loss", "classifier_loss"):
    ours = np.array(xla["losses"][name])
    assert len(ours) == STEPS // 2
    # The game amplifies rounding: 1e-6 at the start, about 3e-3 by step 80.
    np.testing.assert_allclose(ours, one["losses"][name][:len(ours)], rtol=2e-3,
                               atol=1e-4, err_msg=name)


def test_synchronised_batch_norm_restores_the_one_replica_game(curves):
  """BatchNorm over each replica's half batch is another game; with
  --runtime.sync_batch_norm the statistics are the global batch's again."""
  one, two, synced = curves["one_bn"], curves["two_bn"], curves["two_bn_sync"]
  for name in ("g_loss", "d_loss"):
    reference = np.array(one["losses"][name])
    apart = np.abs(np.array(two["losses"][name]) - reference).max()
    together = np.abs(np.array(synced["losses"][name]) - reference).max()
    # Synchronised: float rounding (about 1e-7); per replica: another game, whose
    # losses move away from the first step on (about 3e-5 there already).
    assert together < 1e-5 * (1 + np.abs(reference).max()), (name, together)
    assert apart > 10 * max(together, 1e-7), (name, apart, together)


def test_replicas_share_an_evaluation_without_changing_it(tmp_path):
  """The classifier evaluator's batches drawn and scored on 2 replicas give the
  one-device results (70 samples in batches of 16: a short last batch, a group of
  replicas with one batch)."""
  out = tmp_path / "evaluation.json"
  subprocess.run([sys.executable, os.path.join(SCRIPTS, "replica_evaluation.py"),
                  str(out)], cwd=REPO, env=_env(), check=True, timeout=600)
  with open(out) as f:
    results = json.load(f)
  one, two = results["one"], results["two"]
  assert one["num_samples"] == two["num_samples"] == 70
  for name in ("classifier_score", "fid", "kid", "kid_std", "label_kl"):
    assert two[name] == pytest.approx(one[name], rel=1e-6, abs=1e-9), name
  assert two["per_generator_labels"] == one["per_generator_labels"]
  assert sum(map(sum, one["per_generator_labels"])) == 70


# ----------------------------------------------------------------- multi-worker
WORKER_SETTINGS = ("--runtime.strategy=multi_worker", "--trainer.train_steps=20",
                   "--eval.every=10", "--eval.num_samples=300",
                   "--model.num_generators=2", "--model.generator_hidden=16",
                   "--model.discriminator_hidden=32,32", "--trainer.keep_checkpoints=5")


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _start_workers(model_dir, log_dir, tag, ports=None):
  """Two worker processes of one cluster on loopback ports (`ports`, or two free
  ones); (processes, log paths)."""
  addresses = [f"localhost:{p}" for p in ports or _free_ports(2)]
  processes, logs = [], []
  for index in range(2):
    spec = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    log = log_dir / f"{tag}_worker{index}.log"
    with open(log, "w") as f:
      processes.append(subprocess.Popen(
          [sys.executable, "-m", "tf_stackelberg.main", f"--model_dir={model_dir}",
           *WORKER_SETTINGS], cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
          env=_env(TF_CONFIG=json.dumps(spec))))
    logs.append(log)
  return processes, logs


def _finish(processes, logs, timeout=600):
  """Waits for the workers; returns their weight digests (every worker exited 0)."""
  digests = []
  for process, log in zip(processes, logs):
    status = process.wait(timeout=timeout)
    text = log.read_text()
    assert status == 0, text[-3000:]
    digests.append(re.search(r"Weights digest of worker-\d: (\w+)", text).group(1))
  return digests


def _kill(processes):
  for process in processes:
    if process.poll() is None:
      process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def test_two_workers_train_alike_and_resume_after_a_kill(tmp_path):
  """Two workers end with identical weights; a cluster whose second worker is
  killed mid-run resumes from the chief's checkpoint and ends with exactly the
  weights of the uninterrupted cluster. Only the chief writes the run directory.

  The two clusters are independent (own ports, own run directories) and start
  together, so that their processes' start-up overlaps."""
  whole, cut = tmp_path / "whole", tmp_path / "cut"
  ports = _free_ports(4)  # at once: four distinct ports
  uninterrupted = _start_workers(whole, tmp_path, "whole", ports[:2])
  started = list(uninterrupted[0])
  try:
    processes, logs = _start_workers(cut, tmp_path, "cut", ports[2:])
    started += processes
    deadline = time.monotonic() + 600
    while not (cut / "checkpoints" / "ckpt-10.index").exists():
      assert time.monotonic() < deadline and processes[0].poll() is None, (
          logs[0].read_text()[-3000:])
      time.sleep(0.2)
    processes[1].send_signal(signal.SIGKILL)
    # The chief cannot go on without its peer; the cluster is restarted as a whole.
    time.sleep(2)
    _kill(processes)
    resumed = _start_workers(cut, tmp_path, "resumed")
    started += resumed[0]
    digests = _finish(*uninterrupted)
    assert digests[0] == digests[1]
    assert sorted(os.listdir(whole / "checkpoints"))[:2] == [
        "checkpoint", "ckpt-10.data-00000-of-00001"]
    assert not (whole / "workers").exists()  # the other worker's files are gone
    digests_resumed = _finish(*resumed)
    assert "Resuming" in resumed[1][0].read_text()
    assert digests_resumed == digests
  finally:
    _kill(started)  # none is left running when an assertion fails
