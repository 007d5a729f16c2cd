"""Run folders: the manifest, the lock, and what a rerun may touch."""

import json
import time

import pytest

from playlist_sim.common import runs
from playlist_sim.common.run_folder import MANIFEST


def test_manifest_records_the_run_and_its_status(tmp_path):
  root = tmp_path / "run"
  with runs.RunFolder(str(root), "simulate", {"a": 1}) as run:
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["status"] == "running" and manifest["kind"] == "simulate"
    (root / "out.txt").write_text("x")
    run.finish("A.b = 1\n")
  manifest = json.loads((root / MANIFEST).read_text())
  assert manifest["status"] == "finished"
  assert manifest["config_hash"] == runs.config_hash({"a": 1})
  assert manifest["operative_config_hash"]
  assert manifest["version"] and manifest["started"] and manifest["ended"]


def test_finished_run_is_recognised_and_another_config_refused(tmp_path):
  root = str(tmp_path / "run")
  with runs.RunFolder(root, "simulate", {"a": 1}) as run:
    run.finish()
  with runs.RunFolder(root, "simulate", {"a": 1}) as run:
    assert run.already_finished
  with pytest.raises(runs.RunFolderError, match="another configuration"):
    with runs.RunFolder(root, "simulate", {"a": 2}):
      pass
  with runs.RunFolder(root, "simulate", {"a": 2}, overwrite=True) as run:
    assert not run.already_finished


def test_another_kind_and_an_input_folder_are_refused(tmp_path):
  root = str(tmp_path / "run")
  with runs.RunFolder(root, "generate_logs") as run:
    run.finish()
  with pytest.raises(runs.RunFolderError, match="'generate_logs' run"):
    with runs.RunFolder(root, "simulate"):
      pass
  with pytest.raises(runs.RunFolderError, match="--logs_dir"):
    with runs.RunFolder(root, "train_user_model",
                        inputs={"logs_dir": root}):
      pass
  with runs.RunFolder(root, "simulate", overwrite=True) as run:
    run.finish()
  assert json.loads((tmp_path / "run" / MANIFEST).read_text())[
      "kind"] == "simulate"


def test_failure_before_any_output_leaves_no_folder(tmp_path):
  root = tmp_path / "never"
  with pytest.raises(RuntimeError):
    with runs.RunFolder(str(root), "simulate"):
      raise RuntimeError("boom")
  assert not root.exists()


def test_failure_after_output_is_recorded_and_resumed(tmp_path):
  root = tmp_path / "run"
  with pytest.raises(KeyboardInterrupt):
    with runs.RunFolder(str(root), "train_agent"):
      (root / "checkpoint").mkdir()
      raise KeyboardInterrupt
  manifest = json.loads((root / MANIFEST).read_text())
  assert manifest["status"] == "failed" and manifest["error"] == "interrupted"
  with runs.RunFolder(str(root), "train_agent") as run:
    assert run.resumed and not run.already_finished


def test_second_run_on_a_busy_folder_stops_at_once(tmp_path):
  # flock locks belong to open files, so a second RunFolder in this process
  # meets the lock as another process would (tests/test_cli.py does that).
  root = str(tmp_path / "run")
  with runs.RunFolder(root, "simulate"):
    start = time.monotonic()
    with pytest.raises(runs.RunBusyError, match="in use by another run"):
      with runs.RunFolder(root, "simulate"):
        pass
    assert time.monotonic() - start < 1.0
  with runs.RunFolder(root, "simulate") as run:  # Released: usable again.
    assert run.resumed


def test_shipped_configs_are_found_by_name_from_any_folder(tmp_path,
                                                           monkeypatch):
  monkeypatch.chdir(tmp_path)
  for name in ("ahdqn", "ahdqn.gin", "configs/ahdqn.gin"):
    assert runs.resolve_gin_file(name).endswith("configs/ahdqn.gin")
  with pytest.raises(runs.ConfigError, match="shipped configs: .*ahdqn"):
    runs.resolve_gin_file("ahdqm")
  # Its includes ('configs/log_episodes.gin' -> world -> simulate) resolve.
  runs.parse_gin(["configs/world.gin"], [])
  (tmp_path / "mine.gin").write_text("include 'world.gin'\n"
                                     "PlaylistEnvironment.max_playlist_length"
                                     " = 7\n")
  runs.parse_gin([str(tmp_path / "mine.gin")], [])


def test_operative_bindings_parse_multiline_values():
  text = ("# Parameters for A:\n# ===\nA.x = 1\ntrain/B.y = [\n    1,\n"
          "    2]\nMACRO = 'p'\n")
  assert runs.operative_bindings(text) == {
      "A.x": "1", "train/B.y": "[ 1, 2]", "MACRO": "'p'"}


def test_refused_rerun_of_a_finished_run_keeps_its_manifest(tmp_path):
  root = tmp_path / "run"
  with runs.RunFolder(str(root), "train_agent", {"a": 1}) as run:
    (root / "out").write_text("x")
    run.finish()
  before = (root / MANIFEST).read_bytes()
  with pytest.raises(ValueError, match="another config"):
    with runs.RunFolder(str(root), "train_agent", {"a": 2},
                        rerun_with_new_config=True):
      raise ValueError("checkpoint trained with another config")
  assert (root / MANIFEST).read_bytes() == before
