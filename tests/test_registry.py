"""Tests for the name registries: unknown names, discovery of entries in a package,
duplicate names, and `check_names` on a whole configuration."""

import re
import sys
import textwrap
import uuid

import pytest

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.common.registry import Registry
from tf_stackelberg.modes.names import check_names
from tf_stackelberg.config.sections import Config
from tf_stackelberg.data.registry import DATASETS
from tf_stackelberg.evaluation.registry import EVALUATORS
from tf_stackelberg.game.losses.registry import LOSSES
from tf_stackelberg.models.registry import DISCRIMINATORS, GENERATORS
from tf_stackelberg.modes.registry import MODES
from tf_stackelberg.sampling.registry import SAMPLERS

# registry, its flag, names it must know (at least).
REGISTRIES = [
    (DATASETS, "--data.dataset", {"ring", "grid", "mnist", "fashion_mnist", "cifar10",
                                  "stacked_mnist", "celeb_a", "imagenet32"}),
    (GENERATORS, "--model.generator", {"mlp", "multi_branch"}),
    (DISCRIMINATORS, "--model.discriminator", {"mlp"}),
    (LOSSES, "--loss.family", {"non_saturating", "hinge", "wasserstein",
                               "least_squares"}),
    (EVALUATORS, "--eval.evaluators", {"mixture", "scatter", "samples", "classifier",
                                       "inception", "stacked_mnist"}),
    (MODES, "--mode", {"train", "eval", "export", "sample", "prepare", "diagnose"}),
    (SAMPLERS, "--sampling.sampler", {"wl", "rep", "ddls", "mh", "none"}),
]
IDS = [flag for _, flag, _ in REGISTRIES]


@pytest.mark.parametrize("registry,flag,known", REGISTRIES, ids=IDS)
def test_known_names_are_registered(registry, flag, known):
  names = registry.names()
  assert names == sorted(names)
  assert known <= set(names)
  for name in known:
    assert name in registry
    assert registry.check(name) == name
    assert registry.get(name) is not None
  assert registry.flag == flag


@pytest.mark.parametrize("registry,flag,known", REGISTRIES, ids=IDS)
def test_unknown_name_raises_config_error_naming_flag_and_known_names(registry, flag,
                                                                      known):
  assert "no_such_entry" not in registry
  with pytest.raises(ConfigError) as error:
    registry.get("no_such_entry")
  message = str(error.value)
  assert message.startswith(f"{flag}='no_such_entry' is not a known {registry.kind}")
  listed = re.search(r"\(known: (.*)\)$", message).group(1).split(", ")
  assert listed == registry.names()
  assert known <= set(listed)
  with pytest.raises(ConfigError, match=re.escape(f"{flag}='no_such_entry'")):
    registry.check("no_such_entry")


def test_entries_are_the_builders_of_their_modules():
  from tf_stackelberg.data.datasets import ring  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.game.losses import hinge  # pylint: disable=g-import-not-at-top
  from tf_stackelberg.modes import train  # pylint: disable=g-import-not-at-top
  assert DATASETS.get("ring") is ring.ring
  assert LOSSES.get("hinge") is hinge.hinge
  assert MODES.get("train").run is train.train
  assert MODES.get("train").uses_trained_run is False
  assert MODES.get("eval").uses_trained_run is True


# ------------------------------------------------------------------ a fresh registry
def test_registry_without_package_or_flag():
  registry = Registry("widget")
  registry.register("a")(len)
  assert registry.names() == ["a"]
  assert registry.get("a") is len
  with pytest.raises(ConfigError, match=r"^'b' is not a known widget \(known: a\)$"):
    registry.get("b")
  with pytest.raises(ConfigError, match=r"^--widget='b' is not a known widget"):
    registry.get("b", flag="--widget")


def test_duplicate_names_are_refused():
  registry = Registry("widget")

  @registry.register("a")
  def first():
    return 1

  def second():
    return 2

  with pytest.raises(ValueError, match="widget 'a' is registered twice"):
    registry.register("a")(second)
  assert registry.get("a") is first
  # Registering the same object again (a module imported twice) is harmless.
  assert registry.register("a")(first) is first
  assert registry.names() == ["a"]


def _write(path, text):
  path.write_text(textwrap.dedent(text))


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
  """A package on sys.path whose modules register into `REGISTRY` of a sibling module.

  Returns (registry module name, package name).
  """
  suffix = uuid.uuid4().hex[:8]
  package, registry_module = f"plugins_{suffix}", f"plugins_registry_{suffix}"
  _write(tmp_path / f"{registry_module}.py", f"""
      from tf_stackelberg.common.registry import Registry
      REGISTRY = Registry("widget", package="{package}", flag="--widget")
      """)
  (tmp_path / package).mkdir()
  _write(tmp_path / package / "__init__.py", '"""Widgets."""\n')
  for module, name in (("alpha", "alpha"), ("beta_widget", "beta"),
                       ("_private", "hidden")):
    _write(tmp_path / package / f"{module}.py", f"""
        from {registry_module} import REGISTRY

        @REGISTRY.register("{name}")
        def build():
          return "{name} built"
        """)
  monkeypatch.syspath_prepend(str(tmp_path))
  yield registry_module, package
  for name in list(sys.modules):
    if name.startswith((package, registry_module)):
      del sys.modules[name]


def test_entries_of_a_new_package_are_discovered_lazily(plugin_package):
  registry_module, package = plugin_package
  registry = __import__(registry_module).REGISTRY
  # Nothing is imported before the first lookup.
  assert f"{package}.alpha" not in sys.modules
  assert registry.get("alpha")() == "alpha built"
  assert registry.names() == ["alpha", "beta"]  # modules starting with _ are skipped
  assert f"{package}.beta_widget" in sys.modules
  assert f"{package}._private" not in sys.modules
  assert registry.get("beta")() == "beta built"
  with pytest.raises(ConfigError,
                     match=r"^--widget='hidden' is not a known widget "
                     r"\(known: alpha, beta\)$"):
    registry.get("hidden")


def test_membership_test_also_loads_the_package(plugin_package):
  registry_module, _ = plugin_package
  registry = __import__(registry_module).REGISTRY
  assert "beta" in registry
  assert "gamma" not in registry


# ------------------------------------------------------------------ check_names
def test_check_names_accepts_the_defaults_and_every_known_name():
  config = Config()
  assert check_names(config) is config
  for mode in ("train", "eval", "export", "sample", "prepare", "diagnose"):
    check_names(config.replace(mode=mode))
  for family in ("non_saturating", "hinge", "wasserstein", "least_squares"):
    check_names(config.replace(**{"loss.family": family}))
  check_names(config.replace(**{"data.dataset": "grid", "model.generator":
                                "multi_branch", "eval.evaluators": ("mixture",
                                                                    "scatter"),
                                "sampling.sampler": "rep"}))


@pytest.mark.parametrize("key,flag", [
    ("mode", "--mode"),
    ("data.dataset", "--data.dataset"),
    ("model.generator", "--model.generator"),
    ("model.discriminator", "--model.discriminator"),
    ("loss.family", "--loss.family"),
    ("sampling.sampler", "--sampling.sampler"),
])
def test_check_names_refuses_an_unknown_name_naming_its_flag(key, flag):
  config = Config().replace(**{key: "bogus"})
  with pytest.raises(ConfigError, match=re.escape(f"{flag}='bogus' is not a known")):
    check_names(config)


def test_check_names_checks_every_evaluator():
  config = Config().replace(**{"eval.evaluators": ("mixture", "bogus")})
  with pytest.raises(ConfigError) as error:
    check_names(config)
  assert "--eval.evaluators='bogus'" in str(error.value)
  known = str(error.value).split("(known: ")[1].rstrip(")").split(", ")
  assert {"mixture", "scatter"} <= set(known) and "bogus" not in known
