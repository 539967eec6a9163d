"""The console: lines that fit the terminal, the live progress line, a quiet start-up,
and Ctrl-C that stops at a step boundary with a checkpoint and says how to resume."""

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import REPO
from tf_stackelberg.console import interrupt, progress, startup, text


# ------------------------------------------------------------------ text
def test_format_duration():
  assert text.format_duration(None) == "?"
  assert text.format_duration(float("nan")) == "?"
  assert text.format_duration(42.4) == "42s"
  assert text.format_duration(185) == "3:05"
  assert text.format_duration(3723) == "1:02:03"


@pytest.mark.parametrize("value, shown", [
    (0.69314, "0.6931"), (4.4093, "4.41"), (123.45, "123.5"), (2e-5, "2.00e-05"),
    (-1.5, "-1.50"), (float("nan"), "nan"), (3e6, "3.00e+06")])
def test_format_number_is_short(value, shown):
  assert text.format_number(value) == shown


def test_fit_fields_drops_what_does_not_fit_from_the_end():
  fields = ["step 10/20", "ETA 3s", "d 1.39 g 0.69", "modes 8/8"]
  assert text.fit_fields(fields, 80) == "step 10/20  ETA 3s  d 1.39 g 0.69  modes 8/8"
  assert text.fit_fields(fields, 30) == "step 10/20  ETA 3s"
  assert text.fit_fields(["x" * 50], 20) == ""


def test_fit_groups_separates_groups_by_two_spaces():
  groups = [["step 5/10", "3 steps/s"], ["d 1.00"], ["modes 8/8", "HQ 99.0%"]]
  assert text.fit_groups(groups, 79) == "step 5/10 3 steps/s  d 1.00  modes 8/8 HQ 99.0%"
  assert text.fit_groups(groups, 38) == "step 5/10 3 steps/s  d 1.00  modes 8/8"


def test_shell_lines_wrap_a_command_at_the_width():
  argv = ["python", "-m", "tf_stackelberg.main", "--flagfile=configs/mog_ring.cfg",
          "--trainer.train_steps=20000", "--model_dir=/tmp/a b"]
  lines = text.shell_lines(argv, 50).split("\n")
  assert all(len(line) <= 50 for line in lines)
  assert all(line.endswith(" \\") for line in lines[:-1])
  assert "'--model_dir=/tmp/a b'" in lines[-1]  # quoted for the shell
  joined = " ".join(line.rstrip("\\").strip() for line in lines)
  assert joined.split() == ["python", "-m", "tf_stackelberg.main",
                            "--flagfile=configs/mog_ring.cfg",
                            "--trainer.train_steps=20000", "'--model_dir=/tmp/a", "b'"]


def test_terminal_width_reads_columns(monkeypatch):
  monkeypatch.setenv("COLUMNS", "120")
  assert text.terminal_width() == 119
  monkeypatch.delenv("COLUMNS")
  assert text.terminal_width(io.StringIO()) == text.LOG_WIDTH  # no terminal


def test_bar():
  assert text.bar(0.5, 12) == "[#####.....]"
  assert text.bar(2.0, 6) == "[####]"


# ------------------------------------------------------------------ progress line
class _Clock:

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_line_redraws_in_place_at_most_five_times_a_second():
  stream, clock = io.StringIO(), _Clock()
  line = progress.ProgressLine(stream, live=True, clock=clock)
  calls = []

  def make(i):
    calls.append(i)
    return f"step {i}"

  for i in range(10):
    line.update(lambda i=i: make(i))
    clock.now += 0.0625
  # Built only when drawn: at t = 0, 0.25, 0.5 (at least 0.2 s apart).
  assert calls == [0, 4, 8]
  line.print("done")
  out = stream.getvalue()
  assert out.startswith("\rstep 0") and out.endswith("\r      \rdone\n")
  assert "\n" not in out[:-1]


def test_progress_line_is_silent_when_not_a_terminal():
  stream = io.StringIO()
  line = progress.ProgressLine(stream)  # a StringIO is no terminal
  assert not line.live
  line.update(lambda: "never built")
  line.print("kept")
  assert stream.getvalue() == "kept\n"


def test_progress_line_cuts_to_the_width(monkeypatch):
  monkeypatch.setenv("COLUMNS", "30")
  stream = io.StringIO()
  line = progress.ProgressLine(stream, live=True)
  line.update(lambda: "x" * 100)
  line.print("y" * 100)
  assert all(len(part) <= 29 for part in stream.getvalue().replace("\n", "\r").split("\r"))


# ------------------------------------------------------------------ start-up
def test_known_start_up_lines_are_noise():
  assert startup.is_noise("I0000 00:00:1 123 cudart_stub.cc:31] Could not find cuda "
                          "drivers on your machine, GPU will not be used.")
  assert startup.is_noise("E0000 00:00:1 5 cuda_platform.cc:52] failed call to cuInit: "
                          "INTERNAL: CUDA error")
  assert not startup.is_noise("E0000 some_kernel.cc:1] Out of memory")


def test_help_prints_no_tensorflow_start_up_lines():
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run([sys.executable, "-m", "tf_stackelberg.main", "--help"],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
  assert "Command-line entry point" in result.stdout
  assert result.stderr == ""


# ------------------------------------------------------------------ stop request
def test_first_ctrl_c_sets_the_flag_and_the_second_raises(default_sigint):  # pylint: disable=unused-argument
  stream = io.StringIO()
  with interrupt.StopRequest(stream) as stop:
    assert not stop.requested
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # let the interpreter run the handler
    assert stop.requested
    assert "Ctrl-C again" in stream.getvalue()
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(1)
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _retyped_by_c_code(handler, signum):
  """What C code that was calling back into Python makes of a signal handler's
  exception (TensorFlow's `nest` did this while tracing): an error of its own."""
  try:
    handler(signum, None)
  except BaseException:  # pylint: disable=broad-except
    return AttributeError("'Results' object has no attribute '_type_spec'")
  raise AssertionError("the handler did not raise")


@pytest.mark.parametrize("signum, handler, status", [
    (signal.SIGTERM, "_raise_terminated", 143),
    (signal.SIGINT, "_raise_keyboard_interrupt", 130)])
def test_a_signal_re_typed_by_c_code_still_exits_as_that_signal(
    monkeypatch, capsys, signum, handler, status):
  from tf_stackelberg import main  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(interrupt, "_arm_forced_exit", lambda seconds=None: None)
  monkeypatch.setattr(interrupt, "_raised", None)
  monkeypatch.setattr(main, "_exit_now", sys.exit)  # os._exit would end pytest
  error = _retyped_by_c_code(getattr(interrupt, handler), signum)
  assert interrupt.raised_signal() == signum
  with pytest.raises(SystemExit) as exited:
    main._exit_for(error, (), interrupt)  # pylint: disable=protected-access
  assert exited.value.code == status
  assert capsys.readouterr().err.startswith(
      "\nerror: terminated (SIGTERM)" if signum == signal.SIGTERM
      else "\nerror: interrupted")


def test_an_error_after_no_signal_keeps_its_traceback(monkeypatch):
  from tf_stackelberg import main  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(interrupt, "_raised", None)
  with pytest.raises(AttributeError, match="_type_spec"):
    main._exit_for(AttributeError("_type_spec"), (), interrupt)  # pylint: disable=protected-access


# ------------------------------------------------------------------ the CLI in a terminal
def _run_in_terminal(args, columns, interrupt_when=None, timeout=300):
  """Runs the CLI with its output on a pseudo-terminal `columns` wide; sends SIGINT
  once `interrupt_when(output so far)` holds. Returns (exit status, output)."""
  master, slave = pty.openpty()
  env = dict(os.environ, COLUMNS=str(columns), TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.Popen([sys.executable, "-m", "tf_stackelberg.main", *args], cwd=REPO,
                          stdin=slave, stdout=slave, stderr=slave, env=env,
                          start_new_session=True)
  os.close(slave)
  out, sent, deadline = b"", False, time.monotonic() + timeout
  while time.monotonic() < deadline:
    ready, _, _ = select.select([master], [], [], 0.1)
    if ready:
      try:
        data = os.read(master, 65536)
      except OSError:  # the child closed the terminal
        break
      if not data:
        break
      out += data
    elif proc.poll() is not None:
      break
    if interrupt_when and not sent and interrupt_when(out.decode(errors="replace")):
      os.killpg(proc.pid, signal.SIGINT)
      sent = True
  proc.wait(timeout=60)
  os.close(master)
  return proc.returncode, out.decode(errors="replace")


def _screen_segments(output):
  """What a terminal shows: every piece between newlines and carriage returns."""
  return [part for line in output.replace("\r\n", "\n").split("\n")
          for part in line.split("\r")]


def test_training_console_fits_80_columns_and_ctrl_c_checkpoints():
  # A short directory name, so that the printed paths fit too.
  model_dir = tempfile.mkdtemp(prefix="tsg") + "/run"
  args = ["--flagfile=configs/mog_ring.cfg", "--trainer.train_steps=100000",
          "--eval.every=100", "--trainer.steps_per_execution=20",
          "--eval.num_samples=1000", f"--model_dir={model_dir}"]
  # Interrupted once the second interval line is out.
  status, output = _run_in_terminal(args, 80,
                                    interrupt_when=lambda out: out.count(" it/s ") >= 2)
  assert status == 130, output
  segments = _screen_segments(output)
  too_wide = [s for s in segments if len(s) > 80]
  assert not too_wide, too_wide
  # Live bar within the interval, then one line per interval.
  assert any("[" in s and "ETA" in s and " d " in s for s in segments), output
  interval_lines = [s for s in segments if s.startswith("step ") and " it/s " in s]
  assert len(interval_lines) >= 2, output
  # The first metrics fit in 80 columns; the last ones are left out when needed.
  assert all(" modes " in s for s in interval_lines), interval_lines
  stopped = [s for s in segments if s.startswith("Stopped at step ")]
  assert len(stopped) == 1, output
  assert "error:" not in output  # a requested stop is no failure
  step = int(stopped[0].split()[3])
  assert step > 200 and step % 20 == 0  # a step boundary after the second interval
  assert "The same command resumes the run:" in output
  # With the interpreter that ran it (a bare `python` may not be this virtualenv's).
  resume = output.split("The same command resumes the run:")[1]
  assert resume.split()[0] == sys.executable, resume
  assert "Traceback" not in output
  checkpoints = [f for f in os.listdir(os.path.join(model_dir, "checkpoints"))
                 if f.endswith(".index")]
  assert f"ckpt-{step}.index" in checkpoints

  # The stop is at a step boundary off the evaluation grid, from which a resumed run
  # continues exactly (tests/test_training.py, resume off the interval grid).
  with open(os.path.join(model_dir, "eval_history.json")) as f:
    assert [h["step"] for h in json.load(f)] == [100, 200]
