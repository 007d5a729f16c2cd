"""The user-model guide's plug-in example runs as written, in the environment."""

import json
import os
import re
import subprocess
import sys

import pytest

import user_models
from tests.conftest import REPO_ROOT

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

EXAMPLE = os.path.join(REPO_ROOT, "docs", "user_models.md")
HEADING = "## Plug in your own user model"


def _example_code() -> str:
  with open(EXAMPLE) as f:
    text = f.read()
  section = text.split(HEADING, 1)[1]
  return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_example_is_short_and_subclasses_the_interface():
  code = _example_code()
  assert len(code.strip().splitlines()) < 30
  assert "(user_models.AbstractUserModel)" in code
  assert "EnvironmentBuilder" in code


def test_example_runs_as_written(tmp_path):
  script = tmp_path / "example.py"
  script.write_text(_example_code())
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH",
                                                                ""))
  out = subprocess.run([sys.executable, str(script)], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  assert "rewards of the last step:" in out.stdout


DOC = os.path.join(REPO_ROOT, "docs", "plugins.md")


def _doc_blocks() -> tuple[str, str]:
  """The model (first python block) and the gin file (first plain block)."""
  with open(DOC) as f:
    text = f.read()
  model = re.search(r"`my_listener.py`\n\n```python\n(.*?)```", text, re.S)
  config = re.search(r"`my_listener.gin`\n\n```\n(.*?)```", text, re.S)
  return model.group(1), config.group(1)


def test_catalog_columns_by_name(small_world):
  catalog = small_world.catalog
  assert catalog.column("energy") is catalog.columns["energy"]
  z = catalog.feature("energy")
  assert z.shape == (catalog.num_tracks,) and abs(float(z.mean())) < 1e-4
  with pytest.raises(user_models.UnknownColumnError, match="columns: "):
    catalog.column("energie")


@pytest.mark.slow
def test_documented_plugin_runs_from_a_folder_outside_the_repo(tmp_path):
  model, config = _doc_blocks()
  (tmp_path / "my_listener.py").write_text(model)
  (tmp_path / "my_listener.gin").write_text(config)
  script = os.path.join(REPO_ROOT, "scripts", "simulate.py")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  out = subprocess.run(
      [sys.executable, script, "--gin_file", "my_listener.gin", "--policy",
       "popularity", "--num_episodes", "20", "--root_dir", "runs/mine"],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  metrics = json.loads((tmp_path / "runs" / "mine" / "metrics.json")
                       .read_text())
  assert metrics["user_model"] == "PopularityListener"
  assert "PopularityListener.patience = 0.5" in (
      tmp_path / "runs" / "mine" / "operative_config.gin").read_text()
  # The other documented way: the module on --gin_imports, no gin import.
  (tmp_path / "no_import.gin").write_text(config.replace(
      "import my_listener\n", ""))
  out = subprocess.run(
      [sys.executable, script, "--gin_file", "no_import.gin", "--gin_imports",
       "my_listener", "--num_episodes", "20", "--root_dir", "runs/mine2"],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
