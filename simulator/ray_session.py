"""A local Ray that listens only on 127.0.0.1 and leaves nothing behind.

`local_ray` starts Ray for the optional distributed paths (`use_ray=True`).
On Linux Ray's node address is the machine's external address, and its
servers (GCS, raylet, workers' gRPC) listen there, reachable from the
network while a run lasts. A local Ray here gets the loopback address as
its node address instead, so every server binds to 127.0.0.1; the address
Ray reports is checked after start, and a Ray that is not on the loopback
address is shut down and refused.

Ray runs in its own temporary folder (`ray_*` under the system temporary
folder), with no dashboard and a per-process random auth token in the
environment, so nothing is written to the home folder. On a normal exit,
an exception, Ctrl-C (SIGINT) or SIGTERM (Ray's driver handler turns it
into `SystemExit`) Ray is shut down and the folder removed. A driver killed
with SIGKILL cannot clean up: Ray's servers notice and exit, but its
workers and agents linger. The folder holds `driver.json` (the driver's
pid and start time), and `reap_orphaned_ray` (`python -m
simulator.ray_session`) stops the processes using folders whose driver is
gone (by command line or an open file in the folder) and removes the
folders, touching no other Ray on the machine (`ray
stop --force` also works, but stops every Ray of the user).
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from typing import Iterator

import gin

__all__ = ["LOOPBACK", "local_ray", "reap_orphaned_ray"]

LOOPBACK = "127.0.0.1"
_DRIVER_FILE = "driver.json"


def _start_time(pid: int) -> str | None:
  """The process's start time (clock ticks since boot), None if it is gone
  (or a zombie, dead but not yet collected)."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      fields = f.read().rsplit(")", 1)[1].split()
  except OSError:
    return None
  return None if len(fields) < 20 or fields[0] == "Z" else fields[19]


def _init_loopback(ray, num_workers: int, temp_dir: str) -> None:
  """ray.init with 127.0.0.1 as the node address, checked afterwards."""
  # pylint: disable=g-import-not-at-top,protected-access
  from ray._private import ray_constants
  # Ray resolves the node address through this switch; off, it is the
  # loopback address (as Ray does on macOS/Windows) and the servers bind
  # there. Restored at once: it only matters while the node starts.
  cluster = ray_constants.ENABLE_RAY_CLUSTER
  ray_constants.ENABLE_RAY_CLUSTER = False
  try:
    ray.init(num_cpus=num_workers, include_dashboard=False,
             _temp_dir=temp_dir, _node_ip_address=LOOPBACK,
             log_to_driver=False, configure_logging=False)
  finally:
    ray_constants.ENABLE_RAY_CLUSTER = cluster
  address = ray.util.get_node_ip_address()
  if address != LOOPBACK:
    ray.shutdown()
    raise RuntimeError(
        f"local Ray started on {address!r}, not {LOOPBACK}: this Ray "
        "version does not honour the loopback node address, and a local "
        "run must not listen on the network. Connect to a cluster you run "
        "yourself with local_ray.address instead.")


@gin.configurable
@contextlib.contextmanager
def local_ray(num_workers: int = 2, address: str | None = None
              ) -> Iterator[object]:
  """Starts Ray (locally unless `address` is given) and shuts it down.

  Args:
    num_workers: CPUs given to a local Ray.
    address: a cluster address to connect to instead.

  Yields:
    The `ray` module.

  Raises:
    ImportError: if Ray is not installed (`pip install -e ".[distributed]"`).
    RuntimeError: if a local Ray does not come up on 127.0.0.1.
  """
  try:
    import ray  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('Ray is not installed: pip install -e ".[distributed]"'
                      ) from e
  temp_dir = None
  previous_sigterm = signal.getsignal(signal.SIGTERM)
  if address is None:
    # A token in the environment keeps a local Ray from writing one under
    # $HOME. It stays for the process (Ray reads it once); a cluster is
    # reached with its own token, which is never replaced here.
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
    temp_dir = tempfile.mkdtemp(prefix="ray_")  # Short: Ray uses sockets.
    with open(os.path.join(temp_dir, _DRIVER_FILE), "w") as f:
      json.dump({"pid": os.getpid(), "start": _start_time(os.getpid())}, f)
    try:
      _init_loopback(ray, num_workers, temp_dir)
    except BaseException:
      shutil.rmtree(temp_dir, ignore_errors=True)
      raise
  else:
    ray.init(address=address, log_to_driver=False, configure_logging=False)
  try:
    yield ray
  finally:
    ray.shutdown()
    if temp_dir:
      shutil.rmtree(temp_dir, ignore_errors=True)
    with contextlib.suppress(ValueError, TypeError):  # Not the main thread.
      signal.signal(signal.SIGTERM, previous_sigterm)


def _uses_folder(pid: int, folder: str, cmdline: bytes) -> bool:
  """Whether the process names `folder` in its command line or has a file
  in it open (Ray's workers and agents rename their command line, but
  write their logs into the session folder)."""
  if folder.encode() in cmdline:
    return True
  prefix = folder.rstrip("/") + "/"
  try:
    for fd in os.listdir(f"/proc/{pid}/fd"):
      with contextlib.suppress(OSError):
        if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
          return True
  except OSError:  # Another user's process, or gone.
    pass
  return False


def _processes_of(folder: str) -> list[int]:
  """Pids that use `folder` (`_uses_folder`), and all their descendants."""
  children, roots = {}, []
  for name in os.listdir("/proc"):
    if not name.isdigit():
      continue
    pid = int(name)
    try:
      with open(f"/proc/{pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    except (OSError, IndexError, ValueError):
      continue
    children.setdefault(ppid, []).append(pid)
    if pid != os.getpid() and _start_time(pid) is not None and (
        _uses_folder(pid, folder, cmdline)):
      roots.append(pid)
  found, todo = set(), list(roots)
  while todo:
    pid = todo.pop()
    if pid not in found:
      found.add(pid)
      todo.extend(children.get(pid, []))
  return sorted(found)


def _driver_gone(folder: str) -> bool:
  try:
    with open(os.path.join(folder, _DRIVER_FILE)) as f:
      driver = json.load(f)
    pid, start = int(driver["pid"]), driver["start"]
  except (OSError, ValueError, KeyError, TypeError):
    return False  # Not a folder local_ray made: never touched.
  return _start_time(pid) is None or _start_time(pid) != start


def reap_orphaned_ray(temp_root: str | None = None,
                      grace_seconds: float = 5.0) -> list[str]:
  """Stops the Ray processes of `local_ray` folders whose driver died.

  Only folders `local_ray` made (with its `driver.json`) whose driver
  process no longer exists are touched; every other Ray on the machine is
  left alone.

  Args:
    temp_root: where the `ray_*` folders are (default: the system
      temporary folder).
    grace_seconds: time between SIGTERM and SIGKILL.

  Returns:
    The folders reaped.
  """
  temp_root = temp_root or tempfile.gettempdir()
  reaped = []
  for name in sorted(os.listdir(temp_root)):
    folder = os.path.join(temp_root, name)
    if not name.startswith("ray_") or not _driver_gone(folder):
      continue
    pids = _processes_of(folder)
    for sig in (signal.SIGTERM, signal.SIGKILL):
      for pid in pids:
        with contextlib.suppress(OSError):
          os.kill(pid, sig)
      deadline = time.monotonic() + grace_seconds
      while time.monotonic() < deadline and any(
          _start_time(p) is not None for p in pids):
        time.sleep(0.1)
    shutil.rmtree(folder, ignore_errors=True)
    reaped.append(folder)
  return reaped


if __name__ == "__main__":
  for path in reap_orphaned_ray(sys.argv[1] if len(sys.argv) > 1 else None):
    print(f"reaped {path}")
