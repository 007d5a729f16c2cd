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


def test_overwrite_runs_every_stage_again_from_an_empty_folder(tmp_path):
  folder = tmp_path / "a"
  calls = []

  def work():
    calls.append(1)
    assert not (folder / "checkpoint").exists()
    (folder / "checkpoint").write_text(f"run {len(calls)}")
    return {"n": len(calls)}

  StageRunner("job", ["a"], str(tmp_path)).run("a", str(folder), "kind",
                                               {"x": 1}, work, "a")
  again = StageRunner("job", ["a"], str(tmp_path), overwrite=True)
  # The same configuration, finished: run again, not reused.
  assert again.run("a", str(folder), "kind", {"x": 1}, work, "a") == {"n": 2}
  # Another configuration: run again, not refused.
  assert again.run("a", str(folder), "kind", {"x": 2}, work, "a") == {"n": 3}
  assert (folder / "checkpoint").read_text() == "run 3"


def test_overwrite_never_empties_a_folder_outside_the_job(tmp_path):
  outside = tmp_path / "outside"
  outside.mkdir()
  (outside / "keep").write_text("x")
  runner = StageRunner("job", ["a"], str(tmp_path / "job"), overwrite=True)
  with pytest.raises(RunFolderError, match="not below the job's folder"):
    runner.run("a", str(outside), "kind", {}, dict, "a")
  assert (outside / "keep").exists()
