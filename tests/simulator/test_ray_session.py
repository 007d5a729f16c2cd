"""Local Ray listens on 127.0.0.1 only and leaves nothing behind."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from simulator import ray_session
from tests.conftest import REPO_ROOT, default_sigint

# Runs scripts, subprocesses, Ray or whole trainings: the integration tier.
pytestmark = pytest.mark.integration

_LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}

_DRIVER = """
import sys, time
from simulator.ray_session import local_ray
with local_ray(1) as ray:
  print("up", flush=True)
  time.sleep(600)
"""


def _descendants(pid):
  children = {}
  for name in os.listdir("/proc"):
    if name.isdigit():
      try:
        with open(f"/proc/{name}/stat") as f:
          ppid = int(f.read().rsplit(")", 1)[1].split()[1])
      except (OSError, ValueError, IndexError):
        continue
      children.setdefault(ppid, []).append(int(name))
  found, todo = [], [pid]
  while todo:
    p = todo.pop()
    found.append(p)
    todo.extend(children.get(p, []))
  return found


def _listening_addresses(pids):
  """IP addresses the processes' TCP sockets listen on (from /proc)."""
  inodes = set()
  for pid in pids:
    try:
      for fd in os.listdir(f"/proc/{pid}/fd"):
        with_link = os.readlink(f"/proc/{pid}/fd/{fd}")
        if with_link.startswith("socket:["):
          inodes.add(with_link[8:-1])
    except OSError:
      continue
  found = set()
  for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
    with open(f"/proc/net/{table}") as f:
      rows = f.read().splitlines()[1:]
    for row in rows:
      fields = row.split()
      if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN.
        continue
      raw = bytes.fromhex(fields[1].split(":")[0])
      raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
      found.add(socket.inet_ntop(family, raw))
  return found


_start_time = ray_session._start_time  # pylint: disable=protected-access


def _alive(pids):
  return [p for p in pids if _start_time(p) is not None]


@pytest.fixture
def short_tmp():
  """A short temporary folder: Ray's socket paths must fit 107 bytes."""
  path = tempfile.mkdtemp(prefix="rs", dir="/tmp")
  yield pathlib.Path(path)
  shutil.rmtree(path, ignore_errors=True)


def _start_driver(tmp_path):
  env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=REPO_ROOT)
  proc = subprocess.Popen([sys.executable, "-c", _DRIVER], cwd=REPO_ROOT,
                          env=env, stdout=subprocess.PIPE, text=True,
                          preexec_fn=default_sigint)
  assert proc.stdout.readline().strip() == "up"
  return proc


def test_reaper_stops_only_orphaned_folders(tmp_path):
  orphan = tmp_path / "ray_orphan"
  orphan.mkdir()
  (orphan / "driver.json").write_text(json.dumps({"pid": os.getpid(),
                                                   "start": "0"}))
  # A stand-in for a leftover raylet: its command line names the folder.
  leftover = subprocess.Popen(["sleep", "600", str(orphan)])
  alive = tmp_path / "ray_alive"
  alive.mkdir()
  (alive / "driver.json").write_text(json.dumps(
      {"pid": os.getpid(), "start": _start_time(os.getpid())}))
  foreign = tmp_path / "ray_someone_else"
  foreign.mkdir()
  try:
    assert ray_session.reap_orphaned_ray(str(tmp_path), 2.0) == [str(orphan)]
    assert leftover.wait(timeout=10) is not None
  finally:
    leftover.kill()
  assert not orphan.exists() and alive.exists() and foreign.exists()


@pytest.mark.slow  # Starts Ray: ~10-30 s.
def test_local_ray_listens_on_loopback_only(tmp_path):
  pytest.importorskip("ray")
  with ray_session.local_ray(1) as ray:
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    addresses = _listening_addresses(_descendants(os.getpid()))
  assert addresses and addresses <= _LOOPBACK, addresses


@pytest.mark.slow  # Starts Ray in a subprocess per signal: ~20-60 s each.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_shut_ray_down_and_remove_its_folder(short_tmp, sig):
  tmp_path = short_tmp
  pytest.importorskip("ray")
  proc = _start_driver(tmp_path)
  pids = _descendants(proc.pid)[1:]
  assert pids and any(p.name.startswith("ray_") for p in tmp_path.iterdir())
  proc.send_signal(sig)
  proc.wait(timeout=120)
  deadline = time.monotonic() + 30
  while _alive(pids) and time.monotonic() < deadline:
    time.sleep(0.5)
  assert not _alive(pids)
  assert not [p for p in tmp_path.iterdir() if p.name.startswith("ray_")]


@pytest.mark.slow  # Starts Ray in a subprocess: ~20-60 s.
def test_a_killed_drivers_leftovers_are_reaped(short_tmp):
  tmp_path = short_tmp
  pytest.importorskip("ray")
  proc = _start_driver(tmp_path)
  pids = _descendants(proc.pid)[1:]
  proc.kill()
  proc.wait(timeout=30)
  assert _alive(pids)  # SIGKILL leaves Ray's processes behind ...
  reaped = ray_session.reap_orphaned_ray(str(tmp_path))
  assert len(reaped) == 1 and not os.path.exists(reaped[0])
  assert not _alive(pids)  # ... which the reaper stops.
