"""`playlist-sim benchmark` runs the clone's benchmarks/ or says it needs one.

Run in a subprocess: the command module defines absl flags at import time.
"""

import subprocess
import sys

from tests.conftest import REPO_ROOT

_CODE = """
import sys
from playlist_sim.commands import benchmark
print(set(benchmark.PART_NAMES) == {%s})
benchmark._CLONE_DIR = "/nonexistent/site-packages"
try:
  benchmark._benchmarks()
except benchmark.BenchmarksNotFoundError as e:
  print("refused:", e)
print("benchmarks" in sys.modules)
"""


def test_without_the_folder_the_command_says_to_use_a_clone():
  with open(f"{REPO_ROOT}/benchmarks/main.py", encoding="utf-8") as f:
    source = f.read()
  parts = source[source.index("PARTS: dict"):].split("}")[0]
  names = ", ".join(line.split(":")[0].strip()
                    for line in parts.splitlines()[1:] if ":" in line)
  result = subprocess.run([sys.executable, "-c", _CODE % names],
                          cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.splitlines()
  assert lines[0] == "True"  # The flag's part names are the runner's.
  assert lines[1].startswith("refused:") and "clone" in lines[1]
  assert "scripts/benchmark.py" in lines[1]
  assert lines[2] == "False"  # Nothing was imported from elsewhere.
