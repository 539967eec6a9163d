"""Name-to-builder registries.

Every pluggable part of the package (datasets, architectures, loss families,
evaluators, samplers, command-line modes) has one `Registry`. An entry is one
decorated definition in its own module inside the registry's package; the registry
imports every module of that package the first time it is asked for a name, so adding
an entry never means editing a list or a dispatch chain.

Example:
  DATASETS = Registry("dataset", package="tf_stackelberg.data.datasets",
                      flag="--data.dataset")

  @DATASETS.register("ring")          # in tf_stackelberg/data/datasets/ring.py
  def ring(config): ...

  DATASETS.get("ring")(config)
  DATASETS.get("rnig")  # ConfigError: --data.dataset='rnig' is not a known dataset
                        # (known: grid, ring)
"""

import importlib
import pkgutil
from typing import Callable, Dict, List, Optional

from tf_stackelberg.common.errors import ConfigError


class Registry:
  """Maps names to builders for one kind of part.

  Args:
    kind: what the entries are, for messages ("dataset", "loss family", ...).
    package: dotted name of the package whose modules define the entries; all of
      them are imported on the first lookup.
    flag: the flag that selects an entry, named in the error for an unknown name.
  """

  def __init__(self, kind: str, package: Optional[str] = None,
               flag: Optional[str] = None):
    self.kind = kind
    self.package = package
    self.flag = flag
    self._entries: Dict[str, Callable] = {}
    self._loaded = package is None

  def register(self, name: str):
    """Decorator that registers its target under `name` (names are unique)."""
    def decorate(target):
      if name in self._entries and self._entries[name] is not target:
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._entries[name] = target
      return target
    return decorate

  def _load(self):
    if self._loaded:
      return
    self._loaded = True
    package = importlib.import_module(self.package)
    for module in pkgutil.iter_modules(package.__path__):
      if not module.name.startswith("_"):
        importlib.import_module(f"{self.package}.{module.name}")

  def names(self) -> List[str]:
    """The registered names, sorted."""
    self._load()
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    self._load()
    return name in self._entries

  def check(self, name: str, flag: Optional[str] = None) -> str:
    """Returns `name` if registered; raises `ConfigError` listing the known names."""
    if name not in self:
      where = flag or self.flag
      prefix = f"{where}={name!r}" if where else repr(name)
      raise ConfigError(f"{prefix} is not a known {self.kind} "
                        f"(known: {', '.join(self.names())})")
    return name

  def get(self, name: str, flag: Optional[str] = None) -> Callable:
    """The builder registered as `name`; `ConfigError` for an unknown name."""
    return self._entries[self.check(name, flag)]
