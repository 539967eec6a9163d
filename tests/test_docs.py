"""The documentation: Markdown that renders as written, flags and paths that exist,
configs that say how to run them, and single-generator baselines of the capacity
they claim.

Every check but the last reads files as text and imports no TensorFlow; the flag
names come from `tf_stackelberg/config/sections.py` parsed with `ast`. The capacity
check builds the generators with the project's own builders.
"""

import ast
import glob
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS_PY = os.path.join(REPO, "tf_stackelberg", "config", "sections.py")

# Folders at the top of the repository: a mention that starts with one is a path.
TOP_FOLDERS = ("configs", "docs", "tools", "tests", "tf_stackelberg", ".ci")


def _read(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


def _relative(path):
  return os.path.relpath(path, REPO)


def markdown_files():
  """README.md and every Markdown file under docs/."""
  return [os.path.join(REPO, "README.md")] + sorted(
      glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True))


def config_files():
  return sorted(glob.glob(os.path.join(REPO, "configs", "*.cfg")))


def tool_files():
  """The tools and the library they share."""
  return sorted(glob.glob(os.path.join(REPO, "tools", "**", "*.py"), recursive=True))


# ------------------------------------------------------------------ fences
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")


def fence_problems(text):
  """`(line number, problem)` of every code fence that CommonMark would not close
  where the author meant to: a fence still open at the end of the file, and, inside
  a fence, a line that starts like its closing fence but goes on with text (CommonMark
  does not close a fence there, so everything after it renders as code)."""
  problems, opened = [], None  # opened: (line number, fence characters)
  for number, line in enumerate(text.splitlines(), start=1):
    match = _FENCE.match(line)
    if opened is None:
      if match and not (match.group(2)[0] == "`" and "`" in match.group(3)):
        opened = (number, match.group(2))
      continue
    start, fence = opened
    if not match or match.group(2)[0] != fence[0] or len(match.group(2)) < len(fence):
      continue
    if match.group(3).strip():
      problems.append((number, f"text after the fence of line {start} does not close "
                               f"it: {line.strip()[:60]!r}"))
    else:
      opened = None
  if opened is not None:
    problems.append((opened[0], "code fence never closed"))
  return problems


def test_fence_problems_finds_text_after_a_closing_fence():
  text = "a\n\n```sh\nmake run\n``` The other modes\nstop.\n\n```sh\nx\n```\n"
  assert [n for n, _ in fence_problems(text)] == [5, 8]
  assert fence_problems("```sh\nmake run\n```\n\n~~~\n```\n~~~\n") == []
  assert fence_problems("````md\n```sh\nx\n```\n````\n") == []
  assert [n for n, _ in fence_problems("```\nnever closed\n")] == [1]
  # An inline code span of backticks on its own line opens nothing.
  assert fence_problems("``` a ` b ```\n") == []


@pytest.mark.parametrize("path", markdown_files(), ids=_relative)
def test_every_fence_is_closed(path):
  problems = [f"{_relative(path)}:{n}: {p}" for n, p in fence_problems(_read(path))]
  assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ flags
def defined_flags():
  """Every flag `config/sections.py` defines: `SECTION.FIELD` for the fields of the
  sections, the bare name for the run-level fields of `Config`."""
  tree = ast.parse(_read(SECTIONS_PY))
  names = set()
  for node in tree.body:
    if not isinstance(node, ast.ClassDef):
      continue
    section, fields = None, []
    for item in node.body:
      if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
        continue
      value = item.value
      if item.target.id == "name" and isinstance(value, ast.Constant):
        section = value.value
      elif (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "_field"):
        fields.append(item.target.id)
    if section:
      names.update(f"{section}.{field}" for field in fields)
    elif node.name == "Config":
      names.update(fields)
  return names


def test_defined_flags_are_read_from_the_sections():
  names = defined_flags()
  assert {"trainer.train_steps", "runtime.deterministic", "sampling.wl_bins",
          "data.offline_dir", "model_dir", "seed", "mode"} <= names
  assert "train_steps" not in names and "section.field" not in names


_DOTTED_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)")


def _dotted_flag_mentions(path):
  for number, line in enumerate(_read(path).splitlines(), start=1):
    for match in _DOTTED_FLAG.finditer(line):
      yield number, match.group(1)


@pytest.mark.parametrize(
    "path", markdown_files() + config_files() + tool_files()
    + [os.path.join(REPO, "Makefile")], ids=_relative)
def test_every_section_flag_mentioned_exists(path):
  known = defined_flags()
  unknown = [f"{_relative(path)}:{n}: --{flag}"
             for n, flag in _dotted_flag_mentions(path) if flag not in known]
  assert not unknown, "flags that config/sections.py does not define:\n" + "\n".join(
      unknown)


@pytest.mark.parametrize("path", config_files(), ids=_relative)
def test_every_config_line_is_a_known_flag(path):
  known = defined_flags() | {"flagfile"}
  bad = []
  for number, line in enumerate(_read(path).splitlines(), start=1):
    line = line.strip()
    if not line or line.startswith("#"):
      continue
    name = line[2:].split("=", 1)[0] if line.startswith("--") else None
    if name not in known:
      bad.append(f"{_relative(path)}:{number}: {line}")
  assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ paths
_ROOT_PATH = re.compile(r"(?<![\w./~$-])((?:%s)/[\w./*-]*)" % "|".join(
    re.escape(f) for f in TOP_FOLDERS))
_MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A backticked file path inside the package, written from the package's root
# (`config/sections.py`), as the layout and the design document do.
_PACKAGE_PATH = re.compile(r"`((?:[a-z_]+/)+[a-z_]+\.py)`")


def _exists(path):
  return bool(glob.glob(path)) if "*" in path else os.path.exists(path)


def path_mentions(path):
  """`(line number, mention, where it must exist)` of every path in a file."""
  markdown = path.endswith(".md")
  for number, line in enumerate(_read(path).splitlines(), start=1):
    for match in _ROOT_PATH.finditer(line):
      mention = match.group(1).rstrip(".,:;")
      yield number, mention, [os.path.join(REPO, mention)]
    for match in _PACKAGE_PATH.finditer(line):
      mention = match.group(1)
      if not mention.startswith(TOP_FOLDERS):
        yield number, mention, [os.path.join(REPO, mention),
                                os.path.join(REPO, "tf_stackelberg", mention)]
    if markdown:
      for match in _MD_LINK.finditer(line):
        target = match.group(1).split("#")[0]
        if target and not re.match(r"[a-z]+:", target):
          yield number, target, [os.path.join(os.path.dirname(path), target)]


def test_path_mentions_are_found():
  mentions = [m for _, m, _ in path_mentions(os.path.join(REPO, "README.md"))]
  assert "configs/mog_ring.cfg" in mentions


@pytest.mark.parametrize(
    "path", markdown_files() + config_files() + tool_files(), ids=_relative)
def test_every_path_mentioned_exists(path):
  missing = [f"{_relative(path)}:{n}: {mention}"
             for n, mention, places in path_mentions(path)
             if not any(_exists(p) for p in places)]
  assert not missing, "paths that do not exist:\n" + "\n".join(missing)


# ------------------------------------------------------------------ configs
def _header(path):
  """The comment lines at the top of a config, without their '# '."""
  lines = []
  for line in _read(path).splitlines():
    if not line.startswith("#"):
      break
    lines.append(line[1:].strip())
  return lines


@pytest.mark.parametrize("path", config_files(), ids=_relative)
def test_every_config_starts_with_its_command_needs_and_expectation(path):
  header = _header(path)
  name = _relative(path)
  assert any(f"--flagfile={name}" in line for line in header[:4]), (
      f"{name} must open with the command that runs it")
  assert any(line.startswith("Needs:") for line in header), f"{name}: no 'Needs:'"
  assert any(line.startswith("Expect:") for line in header), f"{name}: no 'Expect:'"


def test_readme_lists_every_config():
  readme = _read(os.path.join(REPO, "README.md"))
  missing = [_relative(p) for p in config_files()
             if f"`{os.path.basename(p)}`" not in readme and _relative(p) not in readme]
  assert not missing, f"configs the README does not list: {missing}"


# ------------------------------------------------------------------ README
README_SECTIONS = ("Install", "Quick start", "Configurations", "An image run",
                   "Modes and the run directory", "Latent sampling", "Results",
                   "Layout", "References")


def test_readme_is_short_and_in_the_newcomers_order():
  text = _read(os.path.join(REPO, "README.md"))
  assert len(text.splitlines()) <= 230  # about four screens; details live in docs/
  headings = [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]
  found = [s for h in headings for s in README_SECTIONS if h.startswith(s)]
  assert found == list(README_SECTIONS), headings
  # The first screen says how to install, run the default and the tests, and how
  # long each takes.
  first_screen = "\n".join(text.splitlines()[:60])
  for needed in ("make run", "make test", "pip install -e .", "minutes"):
    assert needed in first_screen, needed


# ------------------------------------------------------------------ capacity
# The image shape of each data set, as the data sources report it (so that no data
# has to be loaded to build a generator).
_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3),
           "stacked_mnist": (28, 28, 3), "imagenet32": (32, 32, 3)}


def _generator_parameters(config_path, cache):
  from absl import flags  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.config import flags as config_flags  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.game.builder import build_generator  # pylint: disable=g-import-not-at-top
  values = flags.FlagValues()
  config_flags.define_flags(flag_values=values)
  cwd = os.getcwd()
  os.chdir(REPO)  # flagfiles name each other relative to the repository
  try:
    values(["prog", f"--flagfile={config_path}"])
  finally:
    os.chdir(cwd)
  config = config_flags.config_from_flags(values)
  size = config.data.image_size
  shape = _SHAPES.get(config.data.dataset, (size, size, 3))
  key = (repr(config.model), shape)
  if key not in cache:
    generator = build_generator(config, shape)
    generator(tf.zeros([1, config.model.latent_dim]))
    cache[key] = sum(int(tf.size(v)) for v in generator.trainable_variables)
    keras.backend.clear_session()
  return cache[key]


def test_every_single_generator_baseline_has_the_capacity_of_its_k_generators():
  cache, report, bad = {}, [], []
  for single in sorted(glob.glob(os.path.join(REPO, "configs", "*_single.cfg"))):
    base = single.replace("_single.cfg", ".cfg")
    one, many = _generator_parameters(single, cache), _generator_parameters(base, cache)
    line = f"{_relative(single)}: {one:,} parameters, {one / many:.3f} x {many:,}"
    report.append(line)
    if abs(one / many - 1) > 0.10:
      bad.append(line)
  assert len(report) >= 7
  assert not bad, "single-generator baselines outside +-10%:\n" + "\n".join(bad)
