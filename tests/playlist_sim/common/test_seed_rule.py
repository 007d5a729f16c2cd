"""`--seed` and a gin `<entry>.seed` binding: one seed, or a clear error."""

import json

import gin
import pytest

from playlist_sim import cli
from playlist_sim.common import runs

_TINY_SIM = ["--num_episodes", "4", "--batch_size", "2",
             "--gin_bindings", "SyntheticWorld.num_tracks = 200",
             "--gin_bindings", "SyntheticWorld.num_users = 20"]


@gin.configurable
def _entry(seed: int = 0) -> int:
  return seed


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def test_flag_alone_and_binding_alone_give_their_seed():
  assert runs.resolve_seed(5, True, ("_entry",)) == 5
  gin.parse_config("_entry.seed = 7")
  assert runs.resolve_seed(0, False, ("_entry",)) == 7
  assert runs.resolve_seed(7, True, ("_entry",)) == 7  # Both, agreeing.


def test_different_flag_and_binding_are_refused_naming_both():
  gin.parse_config("_entry.seed = 7")
  with pytest.raises(runs.ConfigError,
                     match=r"--seed 3 and the gin binding _entry.seed = 7"):
    runs.resolve_seed(3, True, ("_entry",))
  # The default --seed 0 given explicitly is a choice too.
  with pytest.raises(runs.ConfigError, match="different seeds"):
    runs.resolve_seed(0, True, ("_entry",))


def test_a_seed_binding_that_is_not_an_integer_is_refused():
  gin.parse_config("_entry.seed = 'seven'")
  with pytest.raises(runs.ConfigError, match="must be an integer"):
    runs.resolve_seed(0, False, ("_entry",))


def test_simulate_uses_the_bound_seed_when_no_flag_is_given(tmp_path):
  root = tmp_path / "sim"
  assert cli.run("simulate", ["--root_dir", str(root), *_TINY_SIM,
                              "--gin_bindings", "simulate.seed = 4"]) == 0
  assert json.loads((root / "metrics.json").read_text())["seed"] == 4
  manifest = json.loads((root / "run.json").read_text())
  assert manifest["status"] == "finished"


def test_an_environment_seed_binding_is_the_runs_seed(tmp_path):
  root = tmp_path / "sim"
  assert cli.run("simulate", ["--root_dir", str(root), *_TINY_SIM,
                              "--gin_bindings",
                              "PlaylistEnvironment.seed = 6"]) == 0
  assert json.loads((root / "metrics.json").read_text())["seed"] == 6


@pytest.mark.parametrize("command,binding", [
    ("simulate", "simulate.seed = 4"),
    ("train-agent", "train_eval.seed = 4"),
    ("generate-logs", "PlaylistEnvironment.seed = 4"),
])
def test_commands_refuse_a_flag_that_contradicts_the_binding(
    tmp_path, capsys, command, binding):
  root = tmp_path / "run"
  args = ["--root_dir", str(root), "--seed", "1", "--gin_bindings", binding]
  if command == "simulate":
    args += _TINY_SIM
  assert cli.run(command, args) == 2
  err = capsys.readouterr().err
  assert "--seed 1 and the gin binding" in err and "= 4" in err
  assert not root.exists()  # Refused before the run folder was made.


def test_a_denylisted_seed_binding_points_to_the_flag(tmp_path, capsys):
  assert cli.run("generate-logs", ["--root_dir", str(tmp_path / "logs"),
                                   "--gin_bindings",
                                   "generate_logs.seed = 3"]) == 2
  err = capsys.readouterr().err
  assert "denylisted kwarg 'seed'" in err and "give the seed with --seed" in err
