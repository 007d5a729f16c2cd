"""A stage is reused only for the configuration that made it."""

import pytest

from playlist_sim.common.run_folder import RunFolderError
from playlist_sim.jobs.stages import StageRunner


def test_a_finished_stage_is_reused_for_its_config_only(tmp_path):
  runner = StageRunner("job", ["a"], str(tmp_path))
  folder = str(tmp_path / "a")
  calls = []

  def work():
    calls.append(1)
    return {"n": len(calls)}

  assert runner.run("a", folder, "kind", {"x": 1}, work, "a") == {"n": 1}
  assert runner.run("a", folder, "kind", {"x": 1}, work, "a") == {"n": 1}
  assert len(calls) == 1 and runner.seconds["a"] == 0.0
  with pytest.raises(RunFolderError, match="stage 'a'.*delete that folder"):
    runner.run("a", folder, "kind", {"x": 2}, work, "a")
  assert len(calls) == 1
