"""The user-model guide's plug-in example runs as written, in the environment."""

import os
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT

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
