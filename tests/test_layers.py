"""The layer rules of the package (docs/design.md section 13), read from the source
text: every import of `tf_stackelberg` goes down the floors, `config/` imports only
`common/`, the top-level imports between modules form no cycle, and no module is over
`MAX_LINES` lines.

Imports are found with `ast` (those inside functions too); nothing here imports the
package or TensorFlow.
"""

import ast
import glob
import os


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "tf_stackelberg")
MAX_LINES = 700

# The floors, lowest first. An import from one package to another must go to a lower
# floor; packages on one floor import none of each other.
FLOORS = (
    ("common",),
    ("config", "console", "data", "metrics", "models", "visualization"),
    ("evaluation", "game", "sampling"),
    ("export",),
    ("training",),
    ("app",),
    ("modes",),
    ("main",),
)
FLOOR = {package: level for level, packages in enumerate(FLOORS)
         for package in packages}

# Split by another change; the line limit applies to it once it is.


def source_files():
  return sorted(glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True))


def module_name(path):
  """`tf_stackelberg.x.y` of a source file (`tf_stackelberg.x` for `x/__init__.py`)."""
  parts = os.path.relpath(path, REPO)[:-len(".py")].split(os.sep)
  if parts[-1] == "__init__":
    parts = parts[:-1]
  return ".".join(parts)


def package_of(module):
  """The package a module belongs to: `sampling` for `tf_stackelberg.sampling.x`,
  `main` for `tf_stackelberg.main`, '' for `tf_stackelberg` itself."""
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else ""


def imports(path, top_level_only=False):
  """`(line, module)` of every `tf_stackelberg` module the file imports.

  `from tf_stackelberg.x import y` names `tf_stackelberg.x.y` when `y` is a module
  of the package, else `tf_stackelberg.x`.
  """
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  nodes = tree.body if top_level_only else ast.walk(tree)
  found = []
  for node in nodes:
    if isinstance(node, ast.Import):
      found += [(node.lineno, alias.name) for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative: resolved against the file's own package
        here = module_name(path).split(".")
        if not path.endswith("__init__.py"):
          here = here[:-1]
        base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
      for alias in node.names:
        candidate = f"{base}.{alias.name}"
        found.append((node.lineno, candidate if is_module(candidate) else base))
  return sorted({(line, name) for line, name in found
                 if name == "tf_stackelberg" or name.startswith("tf_stackelberg.")})


def is_module(name):
  path = os.path.join(REPO, *name.split("."))
  return os.path.isfile(path + ".py") or os.path.isfile(
      os.path.join(path, "__init__.py"))


def test_imports_are_read_from_the_source_text():
  sample = os.path.join(PACKAGE, "modes", "sample.py")
  names = {name for _, name in imports(sample)}
  assert {"tf_stackelberg.visualization", "tf_stackelberg.common.files",
          "tf_stackelberg.app.latent"} <= names
  # Imports inside functions count: main.py imports the modes only there.
  assert "tf_stackelberg.modes.registry" in {
      name for _, name in imports(os.path.join(PACKAGE, "main.py"))}
  assert package_of("tf_stackelberg.main") == "main"
  assert package_of("tf_stackelberg.sampling.samplers.wl") == "sampling"


def test_every_package_has_a_floor():
  packages = {package_of(module_name(p)) for p in source_files()} - {""}
  assert packages <= set(FLOOR), f"packages without a floor: {packages - set(FLOOR)}"


def test_every_import_goes_down_the_floors():
  upward = []
  for path in source_files():
    source = package_of(module_name(path))
    for line, name in imports(path):
      target = package_of(name)
      if target == source:
        continue
      if not source or not target or FLOOR[target] >= FLOOR[source]:
        upward.append(f"{os.path.relpath(path, REPO)}:{line}: {source or 'tf_stackelberg'}"
                      f" (floor {FLOOR.get(source)}) imports {name} "
                      f"(floor {FLOOR.get(target)})")
  assert not upward, "imports that do not go down the floors:\n" + "\n".join(upward)


def test_config_imports_only_common():
  outside = [f"{os.path.relpath(path, REPO)}:{line}: {name}"
             for path in source_files() if package_of(module_name(path)) == "config"
             for line, name in imports(path)
             if package_of(name) not in ("config", "common")]
  assert not outside, "config/ imports more than common/:\n" + "\n".join(outside)


def test_top_level_imports_form_no_cycle():
  graph = {module_name(p): {name for _, name in imports(p, top_level_only=True)}
           for p in source_files()}
  done, active = set(), []

  def visit(module):
    if module in active:
      return active[active.index(module):] + [module]
    if module in done:
      return None
    active.append(module)
    for target in sorted(graph.get(module, ())):
      cycle = visit(target)
      if cycle:
        return cycle
    active.pop()
    done.add(module)
    return None

  for module in sorted(graph):
    cycle = visit(module)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _lines(path):
  with open(path, encoding="utf-8") as f:
    return sum(1 for _ in f)


def test_no_module_is_over_the_line_limit():
  long = [f"{os.path.relpath(p, REPO)}: {_lines(p)} lines" for p in source_files()
          if _lines(p) > MAX_LINES]
  assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)
