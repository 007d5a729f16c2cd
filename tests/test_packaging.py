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


def test_the_docs_site_config_parses_and_every_page_exists():
  # `mkdocs build` runs only in CI's last step; a YAML slip (a colon in a
  # page title) would pass every test and fail there.
  import yaml  # Ray's dependency, so present wherever the tests run.

  with open(os.path.join(REPO_ROOT, "mkdocs.yml"), encoding="utf-8") as f:
    config = yaml.safe_load(f)

  def pages(nav):
    for entry in nav:
      value = next(iter(entry.values())) if isinstance(entry, dict) else entry
      if isinstance(value, list):
        yield from pages(value)
      else:
        yield value

  missing = [p for p in pages(config["nav"])
             if not os.path.isfile(os.path.join(REPO_ROOT, "docs", p))]
  assert not missing, f"mkdocs.yml names pages that do not exist: {missing}"
