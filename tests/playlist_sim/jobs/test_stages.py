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


def test_an_unfinished_stage_of_another_config_is_not_resumed(tmp_path):
  runner = StageRunner("job", ["a"], str(tmp_path))
  folder = str(tmp_path / "a")

  def killed():  # Checkpoints, then the kill.
    (tmp_path / "a" / "checkpoint").write_text("step 5")
    raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    runner.run("a", folder, "kind", {"x": 1}, killed, "a")
  with pytest.raises(RunFolderError, match="an unfinished 'kind' run"):
    runner.run("a", folder, "kind", {"x": 2}, dict, "a")
  # The same configuration resumes it.
  assert runner.run("a", folder, "kind", {"x": 1}, lambda: {"n": 1},
                    "a") == {"n": 1}
