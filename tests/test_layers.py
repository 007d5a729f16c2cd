"""The one-way layers (docs/architecture.md) hold, and imports sit on top.

* `lint-imports` keeps the contracts of pyproject.toml: every import points
  down the layers, and the data, common and estimator modules import no
  TensorFlow;
* no module of the packages imports a module of the packages inside a
  function or method body (a hidden import is how a backward dependency
  hides from the contract);
* our own code never goes through the aliases kept at old paths, and the
  upward aliases warn.
"""

import ast
import functools
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

_PACKAGES = ("playlist_sim", "simulator", "user_models", "agents")

#: Modules kept at an old path that re-export a module that moved (no
#: package module may import them; they are for users and docs).
DOWNWARD_ALIASES = (
    "agents.baselines", "agents.comparison", "agents.oracle",
    "agents.score_features", "simulator.io_utils", "simulator.log_stats",
    "simulator.logs", "simulator.runs", "user_models.catalog",
    "user_models.checks")
#: Aliases of modules that moved up a layer: they warn DeprecationWarning.
UPWARD_ALIASES = (
    "simulator.distributed", "simulator.evaluation",
    "simulator.evaluation.estimators", "simulator.evaluation.evaluate",
    "simulator.evaluation.logged", "simulator.evaluation.policies",
    "simulator.log_generation", "simulator.pipeline")


@functools.lru_cache(maxsize=1)
def _modules() -> dict[str, ast.Module]:
  """Module name -> parsed source, for every module of the packages."""
  found = {}
  for top in _PACKAGES:
    for folder, _, files in os.walk(os.path.join(REPO_ROOT, top)):
      for name in files:
        if name.endswith(".py"):
          path = os.path.join(folder, name)
          module = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
          with open(path, encoding="utf-8") as f:
            found[module.removesuffix(".__init__")] = ast.parse(f.read(),
                                                               path)
  return found


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
  """The package modules an import statement names."""
  if isinstance(node, ast.Import):
    names = [alias.name for alias in node.names]
  elif node.level or node.module is None:
    names = [node.module or ""]  # Relative: the packages use none.
  else:
    # `from a.b import c` may import the module a.b.c: name both.
    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
  return [n for n in names if n.split(".")[0] in _PACKAGES]


def _imports_in_functions(tree: ast.Module) -> list[tuple[int, str]]:
  found = []
  for func in ast.walk(tree):
    if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
      for node in ast.walk(func):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
          found += [(node.lineno, n) for n in _imported(node)[:1]]
  return found


def test_lint_imports_keeps_every_contract():
  lint = os.path.join(os.path.dirname(sys.executable), "lint-imports")
  if not os.path.exists(lint):
    pytest.fail(f"lint-imports not found beside {sys.executable}: install "
                "the test extra (pip install -e '.[test]')")
  result = subprocess.run([lint, "--no-cache"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
  assert "2 kept, 0 broken" in result.stdout, result.stdout[-2000:]


def test_no_package_import_inside_a_function_body():
  hidden = [f"{module}:{line} imports {name}"
            for module, tree in sorted(_modules().items())
            for line, name in _imports_in_functions(tree)]
  assert not hidden, ("move these imports to the top of their files (a "
                      "needed laziness goes in a package __init__ through "
                      "importlib):\n" + "\n".join(hidden))


def test_the_walk_sees_a_hidden_import():
  tree = ast.parse("def f():\n  from simulator import builder\n"
                   "class C:\n  def g(self):\n    import agents.ahdqn\n")
  assert _imports_in_functions(tree) == [(2, "simulator"),
                                         (5, "agents.ahdqn")]


def test_our_code_does_not_use_the_aliases():
  aliases = set(DOWNWARD_ALIASES) | set(UPWARD_ALIASES)
  users = []
  for module, tree in sorted(_modules().items()):
    if module in aliases:
      continue
    for node in ast.walk(tree):
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        users += [f"{module}:{node.lineno} imports {name}"
                  for name in _imported(node) if name in aliases]
  assert not users, "import the new paths:\n" + "\n".join(users)


def test_every_alias_exists():
  modules = _modules()
  missing = [a for a in DOWNWARD_ALIASES + UPWARD_ALIASES if a not in modules]
  assert not missing


@pytest.mark.parametrize("alias", [
    "simulator.evaluation.estimators",
    pytest.param("simulator.pipeline", marks=pytest.mark.slow)])
def test_an_upward_alias_warns(alias):
  code = ("import warnings\n"
          "warnings.filterwarnings('error', '.*is deprecated: import',"
          " DeprecationWarning)\n"
          f"try:\n  import {alias}\nexcept DeprecationWarning as w:\n"
          "  print('warned:', w)\n")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "warned:" in result.stdout and "playlist_sim." in result.stdout
