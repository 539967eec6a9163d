"""Formatting of console lines: durations, and lines that never wrap a terminal."""

import os
import shlex
import shutil

# Columns of a terminal whose width cannot be read.
DEFAULT_WIDTH = 80
# Line length in logs (output that is no terminal).
LOG_WIDTH = 120


def terminal_width(stream=None):
  """Usable columns for `stream`: `COLUMNS` if set, else the terminal's width, minus
  one so that a full line never makes the cursor wrap; `LOG_WIDTH` when `stream` is
  no terminal (a log file does not wrap, and keeps every field)."""
  columns = os.environ.get("COLUMNS")
  if columns and columns.isdigit() and int(columns) > 0:
    width = int(columns)
  elif stream is not None and hasattr(stream, "isatty") and stream.isatty():
    try:
      width = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
      width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
  else:
    return LOG_WIDTH
  return max(20, width - 1)


def format_duration(seconds):
  """`'42s'`, `'3:05'` (minutes), `'1:02:03'` (hours); `'?'` when unknown."""
  if seconds is None or seconds != seconds or seconds == float("inf"):
    return "?"
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds}s"
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes}:{seconds:02d}"
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}"


def format_number(value):
  """A loss or metric in at most about seven characters."""
  value = float(value)
  if value != value:
    return "nan"
  magnitude = abs(value)
  if magnitude != 0 and (magnitude >= 1e5 or magnitude < 1e-3):
    return f"{value:.2e}"
  if magnitude >= 100:
    return f"{value:.1f}"
  return f"{value:.4f}" if magnitude < 1 else f"{value:.2f}"


def fit_fields(fields, width):
  """Joins `fields` (most important first) with two spaces into a line of at most
  `width` characters, leaving out the fields that do not fit from the end."""
  return fit_groups([[field] for field in fields], width)


def fit_groups(groups, width):
  """Like `fit_fields` for groups of fields: one space within a group, two between
  groups, e.g. `[["step 5/10", "3 steps/s"], ["modes 8/8", "HQ 99%"]]`."""
  line = ""
  for group in groups:
    for index, field in enumerate(f for f in group if f):
      separator = (" " if index else "  ") if line else ""
      if len(line) + len(separator) + len(field) > width:
        return line
      line += separator + field
  return line


def shell_lines(argv, width, indent="  "):
  """`argv` as a shell command, quoted and continued with backslashes so that no line
  is longer than `width` (unless one argument alone is)."""
  lines, line = [], indent
  for arg in (shlex.quote(a) for a in argv):
    if line.strip() and len(line) + 1 + len(arg) + 2 > width:
      lines.append(line + " \\")
      line = indent * 2 + arg
    else:
      line = f"{line} {arg}" if line.strip() else line + arg
  lines.append(line)
  return "\n".join(lines)


def bar(fraction, width):
  """A text bar `[#####.....]` of `width` characters."""
  inner = max(1, width - 2)
  filled = int(round(inner * min(1.0, max(0.0, fraction))))
  return "[" + "#" * filled + "." * (inner - filled) + "]"
