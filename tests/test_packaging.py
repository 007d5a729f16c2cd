"""What `pip install .` ships: every package, the configs, the command."""

import os
import tomllib

from tests.conftest import REPO_ROOT


def _pyproject() -> dict:
  with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)


def test_every_package_of_the_repository_is_listed():
  listed = set(_pyproject()["tool"]["setuptools"]["packages"])
  found = set()
  for top in ("simulator", "user_models", "agents", "playlist_sim"):
    for folder, _, files in os.walk(os.path.join(REPO_ROOT, top)):
      if "__init__.py" in files:
        found.add(os.path.relpath(folder, REPO_ROOT).replace(os.sep, "."))
  assert found <= listed, f"add {sorted(found - listed)} to pyproject.toml"
  assert "simulator.configs" in listed


def test_benchmarks_are_not_installed_and_the_mssd_figures_are():
  setuptools = _pyproject()["tool"]["setuptools"]
  assert not [p for p in setuptools["packages"] if p.startswith("benchmarks")]
  assert setuptools["package-data"]["playlist_sim.data"] == ["*.json"]
  assert os.path.isfile(os.path.join(REPO_ROOT, "playlist_sim", "data",
                                     "mssd_reference.json"))


def test_configs_are_package_data_and_the_command_an_entry_point():
  project = _pyproject()
  setuptools = project["tool"]["setuptools"]
  assert setuptools["package-dir"]["simulator.configs"] == "configs"
  assert setuptools["package-data"]["simulator.configs"] == ["*.gin"]
  assert project["project"]["scripts"]["playlist-sim"] == (
      "playlist_sim.cli:main")
  assert "filelock" in " ".join(project["project"]["dependencies"])
