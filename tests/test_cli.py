"""The command line: flag checks before any work, modes, exit codes.

Most cases call the entry point `tf_stackelberg.main.main` in this process (flags
parsed into the global flag values, as `app.run` does); what needs a process of its own
(absl's own exit status, logical CPU devices) runs `python -m tf_stackelberg.main`.
A training killed with SIGKILL and resumed is in tests/test_run_lock.py.
"""

import json

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from conftest import run_cli, run_main, run_main_printed
from tf_stackelberg import main  # pylint: disable=unused-import (defines the flags)

TINY = ["--trainer.train_steps=200", "--eval.every=100",
        "--trainer.steps_per_execution=50", "--eval.num_samples=1000"]


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("flag, message", [
    ("--game.batch_size=-4", "error: --game.batch_size must be positive, got -4"),
    ("--data.dataset=spiral",
     "error: --data.dataset='spiral' is not a known dataset (known: "),
    ("--model.num_generators=0", "error: --model.num_generators must be positive"),
    ("--model.generator_hidden=32,x", "error: --model.generator_hidden=32,x: expected"),
    ("--data.size=32", "error: --data.size=32 is smaller than --game.batch_size=64"),
    ("--eval.evaluators=mixture,fid", "error: --eval.evaluators='fid' is not a known"),
    ("--sampling.sampler=hmc", "error: --sampling.sampler='hmc' is not a known"),
    ("--mode=serve", "error: --mode='serve' is not a known mode"),
    ("--model.generator=multi_branch", "--model.num_generators=1"),
    ("--model_dir=", "error: --model_dir must name a directory, got an empty value"),
    ("--game.batch_size=100000000",
     "error: --game.batch_size=100000000 is above the limit of 65,536"),
    ("--eval.num_samples=1000000000",
     "error: --eval.num_samples=1000000000 is above the limit of 10,000,000"),
    ("--sampling.num_samples=1000000000",
     "error: --sampling.num_samples=1000000000 is above the limit of 1,000,000"),
    ("--sampling.step_size=1e6",
     "error: --sampling.step_size=1000000.0 is above the limit of 10.0"),
    ("--sampling.wl_bins=1", "error: --sampling.wl_bins must be at least 2, got 1"),
    ("--sampling.wl_energy_range=0,inf",
     "error: --sampling.wl_energy_range=0.0,inf must be finite"),
    ("--sampling.wl_energy_range=nan,1",
     "error: --sampling.wl_energy_range=nan,1.0 must be finite"),
    ("--sampling.wl_t0=inf", "error: --sampling.wl_t0=inf must be finite"),
    ("--game.learning_rate=nan", "error: --game.learning_rate=nan must be finite"),
    ("--sampling.num_samples=1000000", "error: --sampling.num_samples x "
     "--sampling.steps = 640,000,000 is above the limit of 250,000,000"),
])
def test_bad_flags_are_rejected_before_any_work(tmp_path, capsys, flag, message):
  model_dir = tmp_path / "run"
  status = run_main(f"--model_dir={model_dir}", *TINY, flag)
  assert status == 2
  assert message in capsys.readouterr().err
  # Nothing locks the directory against the corrected settings.
  assert not (model_dir / "flags.json").exists()
  assert not model_dir.exists()  # nothing was created


def test_enum_flags_are_refused_by_absl():
  with pytest.raises(flags.IllegalFlagValueError, match="game.update_order"):
    flags.FLAGS(["prog", "--game.update_order=random"])
  flags.FLAGS.unparse_flags()


def test_unknown_family_and_unknown_flag_exit_codes(tmp_path, capsys):
  model_dir = tmp_path / "run"
  # A known flag with an unknown value is refused by `main` (in this process).
  assert run_main(f"--model_dir={model_dir}", *TINY, "--loss.family=foo") == 2
  assert ("error: --loss.family='foo' is not a known loss family (known: hinge, "
          "least_squares, non_saturating, wasserstein)") in capsys.readouterr().err
  # Unknown flags (here an old flag name) are bad input too: one line, exit status 2,
  # which absl's parser, before `main`, would make 1 (so a process of its own).
  result = run_cli(f"--model_dir={model_dir}", "--train_steps=200")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("error: Unknown command line flag 'train_steps'")
  assert not model_dir.exists()


def test_batch_must_divide_over_replicas(tmp_path):
  model_dir = tmp_path / "run"
  result = run_cli(f"--model_dir={model_dir}", *TINY, "--game.batch_size=63",
                   "--runtime.cpu_devices=2")
  assert result.returncode == 2
  assert "--game.batch_size=63 is not divisible by the 2 replicas" in result.stderr
  assert not model_dir.exists()


@pytest.mark.parametrize("mode", ["eval", "export", "sample", "prepare", "diagnose"])
def test_modes_on_a_run_need_a_trained_run(tmp_path, capsys, mode):
  status = run_main(f"--model_dir={tmp_path / 'empty'}", f"--mode={mode}")
  assert status == 2
  assert "holds no trained run" in capsys.readouterr().err
  assert not (tmp_path / "empty").exists()


# ------------------------------------------------------------------ runs
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
  """`--trainer.train_steps=200` with the default --eval.every (1000), via the command
  line's `main` in this process: (run directory, what it printed)."""
  model_dir = tmp_path_factory.mktemp("cli") / "run"
  status, stdout = run_main_printed(
      f"--model_dir={model_dir}", "--trainer.train_steps=200",
      "--trainer.steps_per_execution=50", "--eval.num_samples=500",
      "--model.num_generators=3")
  assert status == 0, stdout
  return model_dir, stdout


def test_train_steps_alone_with_the_default_eval_every(cli_run):
  model_dir, stdout = cli_run
  assert "step 200/200 " in stdout and "  modes " in stdout
  with open(model_dir / "eval_history.json") as f:
    assert [h["step"] for h in json.load(f)] == [200]
  with open(model_dir / "metrics.json") as f:
    metrics = json.load(f)
  assert metrics["step"] == 200 and metrics["trained_steps_this_run"] == 200
  assert metrics["mixture"]["num_samples"] == 500
  assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-200")
  with open(model_dir / "flags.json") as f:
    resolved = json.load(f)
  assert resolved["eval"]["every"] == 1000
  assert resolved["trainer"]["train_steps"] == 200


def test_eval_takes_the_run_settings_and_refuses_conflicting_ones(cli_run, capsys):
  model_dir, _ = cli_run
  # eval takes the run-defining settings from the run (3 generators, not 8).
  assert run_main(f"--model_dir={model_dir}", "--mode=eval",
                  "--eval.num_samples=300") == 0
  out = capsys.readouterr().out
  assert "Checkpoint at step 200:" in out and "modes:" in out
  with open(model_dir / "eval_metrics_step200.json") as f:
    report = json.load(f)
  assert report["step"] == 200 and report["mixture"]["num_samples"] == 300
  assert len(report["mixture"]["per_generator"]) == 3
  assert (model_dir / "samples_step200.png").exists()
  # A conflicting run-defining flag is refused.
  assert run_main(f"--model_dir={model_dir}", "--mode=eval",
                  "--model.num_generators=5") == 2
  assert "--model.num_generators: run has 3, flag says 5" in capsys.readouterr().err


def test_flagfile_then_overrides(tmp_path):
  flagfile = tmp_path / "run.cfg"
  flagfile.write_text(f"--model_dir={tmp_path / 'run'}\n--model.num_generators=3\n"
                      "--game.batch_size=32\n--loss.family=hinge\n"
                      "--trainer.train_steps=100\n--trainer.steps_per_execution=50\n"
                      "--eval.num_samples=500\n")
  assert run_main(f"--flagfile={flagfile}", "--game.batch_size=16") == 0
  with open(tmp_path / "run" / "flags.json") as f:
    resolved = json.load(f)
  assert resolved["model"]["num_generators"] == 3  # from the flagfile
  assert resolved["loss"]["family"] == "hinge"
  assert resolved["game"]["batch_size"] == 16  # the command line wins
  assert resolved["game"]["learning_rate"] == 2e-4  # the default
  with open(tmp_path / "run" / "metrics.json") as f:
    assert json.load(f)["step"] == 100


# ------------------------------------------------------------------ replicas
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, cli_run):
  """The run of `cli_run` again on two replicas (evaluated every 100 steps)."""
  one_dir, one = cli_run
  assert "Training on 1 device (CPU, no distribution strategy)." in one
  model_dir = tmp_path / "replicas2"
  result = run_cli(f"--model_dir={model_dir}", "--runtime.cpu_devices=2",
                   "--trainer.train_steps=200", "--eval.every=100",
                   "--trainer.steps_per_execution=50", "--eval.num_samples=500",
                   "--model.num_generators=3", check=True)
  assert "Training on 2 replicas (MirroredStrategy: 2 CPUs)." in result.stdout
  histories = {}
  for replicas, directory in ((1, one_dir), (2, model_dir)):
    with open(directory / "eval_history.json") as f:
      histories[replicas] = json.load(f)
  assert [h["step"] for h in histories[2]] == [100, 200]
  assert [h["step"] for h in histories[1]] == [200]
  # Losses are divided by the global batch, so the reported losses of a 2-replica
  # run match a 1-replica run's (the latents differ, hence the tolerance); summing
  # per-replica means instead would double them. Each history row holds the mean
  # over its interval: the two intervals of equal length average to steps 0-200.
  for name in ("d_loss", "g_loss", "d_real_loss"):
    two = np.mean([h[name] for h in histories[2]])
    ratio = two / histories[1][-1][name]
    assert 0.75 < ratio < 1.33, (name, ratio)


# ------------------------------------------------------------------ flag order
def test_command_line_flags_override_the_flagfile_wherever_they_stand(tmp_path):
  flagfile = tmp_path / "run.cfg"
  flagfile.write_text("--model_dir=from_file\n--trainer.train_steps=7\n")
  argv = ["prog", "--model_dir=from_command_line", f"--flagfile={flagfile}",
          "--eval.every=3", "--flagfile", str(flagfile), "--seed=4"]
  assert main.flagfiles_first(argv) == [
      "prog", f"--flagfile={flagfile}", "--flagfile", str(flagfile),
      "--model_dir=from_command_line", "--eval.every=3", "--seed=4"]
  try:
    main.parse_flags(argv)
    assert flags.FLAGS.model_dir == "from_command_line"
    assert flags.FLAGS["trainer.train_steps"].value == 7  # from the file
    assert flags.FLAGS["eval.every"].value == 3
  finally:
    flags.FLAGS.unparse_flags()
