"""The `playlist-sim` command line: help, exit codes, run folders, reruns.

Most tests call `playlist_sim.cli.run` in this process (the commands' flags
are absl flags, defined once per process: simulate, generate-logs and
train-agent share no flag of their own); the slow ones start the installed
way, as subprocesses.
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from playlist_sim import cli
from playlist_sim.common import runs
from tests.conftest import REPO_ROOT, default_sigint

_TINY_SIM = ["--num_episodes", "6", "--batch_size", "3",
             "--gin_bindings", "SyntheticWorld.num_tracks = 200",
             "--gin_bindings", "SyntheticWorld.num_users = 20"]


def _digests(root) -> dict:
  return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob("*")) if p.is_file()}


def test_help_exits_0_and_lists_every_flag_with_choices(capsys):
  assert cli.run("simulate", ["--help"]) == 0
  text = capsys.readouterr().out
  for flag in ("root_dir", "seed", "gin_file", "gin_bindings", "gin_imports",
               "overwrite", "verbose", "debug", "num_episodes",
               "track_episodes"):
    assert re.search(rf"--(\[no\])?{flag}:", text), flag
  assert "<random|popularity|cosine>" in text


def test_bad_gin_file_is_one_line_status_2_and_no_folder(tmp_path, capsys):
  root = tmp_path / "run"
  assert cli.run("simulate", ["--root_dir", str(root), "--gin_file",
                              "nope.gin"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "ConfigError" in err[0] and "nope.gin" in err[0]
  assert not root.exists()


def test_unknown_policy_and_missing_root_dir_are_usage_errors(tmp_path,
                                                              capsys):
  assert cli.run("simulate", ["--root_dir", str(tmp_path / "r"), "--policy",
                              "greedy"]) == 2
  assert "random|popularity|cosine" in capsys.readouterr().err
  assert cli.run("simulate", []) == 2
  assert "--root_dir is required" in capsys.readouterr().err


def test_finished_rerun_touches_no_byte_and_other_kinds_are_refused(
    tmp_path, capsys):
  root = tmp_path / "sim"
  args = ["--root_dir", str(root), *_TINY_SIM]
  assert cli.run("simulate", args) == 0
  manifest = json.loads((root / "run.json").read_text())
  assert manifest["kind"] == "simulate" and manifest["status"] == "finished"
  before = _digests(root)
  capsys.readouterr()
  assert cli.run("simulate", args) == 0
  assert "already holds this finished simulate run" in capsys.readouterr().err
  assert _digests(root) == before
  # Another configuration, or another kind of run, is refused untouched.
  assert cli.run("simulate", args + ["--seed", "1"]) == 2
  assert "another configuration" in capsys.readouterr().err
  assert cli.run("generate-logs", ["--root_dir", str(root)]) == 2
  assert "holds a 'simulate' run" in capsys.readouterr().err
  assert _digests(root) == before
  # --overwrite runs it again.
  assert cli.run("simulate", args + ["--seed", "1", "--overwrite"]) == 0
  assert json.loads((root / "metrics.json").read_text())["seed"] == 1


def _subprocess(*args, cwd=REPO_ROOT, timeout=600):
  return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True,
                        text=True, timeout=timeout)


@pytest.mark.integration
@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_help_exits_0_quietly(command):
  out = _subprocess("-c", "from playlist_sim import cli; cli.main()",
                    command, "--help")
  assert out.returncode == 0, out.stderr[-2000:]
  for flag in ("root_dir", "seed", "gin_file", "gin_bindings", "verbose"):
    assert re.search(rf"--(\[no\])?{flag}:", out.stdout), flag
  assert out.stderr == "", out.stderr[-2000:]  # No library noise.


@pytest.mark.integration
def test_second_process_on_a_busy_root_dir_exits_within_5_s(tmp_path):
  root = tmp_path / "busy"
  first = subprocess.Popen(
      [sys.executable, "scripts/simulate.py", "--root_dir", str(root),
       "--num_episodes", "100000", "--batch_size", "2"], cwd=REPO_ROOT,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + 300
    while not (root / "run.json").exists() and time.monotonic() < deadline:
      time.sleep(0.2)
    assert (root / "run.json").exists()
    # The second one's own start (imports) is timed apart from its refusal.
    code = ("import time, sys; from playlist_sim import cli; "
            "import playlist_sim.commands.simulate, playlist_sim.runner; "
            "t = time.monotonic(); status = cli.run('simulate', sys.argv[1:]);"
            " print(time.monotonic() - t); sys.exit(status)")
    out = _subprocess("-c", code, "--root_dir", str(root))
    assert out.returncode == 2, out.stderr[-2000:]
    # (The imports above ran outside the command's quiet setup.)
    assert "in use by another run" in out.stderr.strip().splitlines()[-1]
    assert float(out.stdout.strip().splitlines()[-1]) < 5.0
  finally:
    first.kill()
    first.wait()


@pytest.mark.integration
def test_commands_work_from_another_folder(tmp_path):
  script = os.path.join(REPO_ROOT, "scripts", "simulate.py")
  out = _subprocess(script, "--root_dir", "sim", "--gin_file", "simulate",
                    "--policy", "cosine", *_TINY_SIM, cwd=tmp_path)
  assert out.returncode == 0, out.stderr[-2000:]
  assert (tmp_path / "sim" / "metrics.json").exists()
  out = _subprocess(script, "--root_dir", "sim2", "--gin_file",
                    "configs/world.gin", *_TINY_SIM, cwd=tmp_path)
  assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.integration
def test_ctrl_c_exits_within_2_s_with_one_line(tmp_path):
  root = tmp_path / "sim"
  proc = subprocess.Popen(
      [sys.executable, "scripts/simulate.py", "--root_dir", str(root),
       "--num_episodes", "1000000", "--batch_size", "2"], cwd=REPO_ROOT,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      preexec_fn=default_sigint)
  deadline = time.monotonic() + 300
  while not (root / "run.json").exists() and time.monotonic() < deadline:
    time.sleep(0.2)
  time.sleep(3.0)  # Well into the episodes.
  start = time.monotonic()
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=60)
  elapsed = time.monotonic() - start
  assert proc.returncode == 130, err[-2000:]
  assert elapsed < 2.0, elapsed
  assert "Traceback" not in err
  assert "interrupted after" in err and "run the same command again" in err
  # Interrupted before its first output: the folder is not left behind.
  assert not root.exists()


def test_busy_root_dir_is_refused_before_the_heavy_imports(tmp_path, capsys):
  root = tmp_path / "busy"
  with runs.RunFolder(str(root), "simulate"):
    start = time.monotonic()
    assert cli.run("simulate", ["--root_dir", str(root)]) == 2
    assert time.monotonic() - start < 1.0
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "RunBusyError" in err[0] and "simulate" in err[0]
