"""One writer per run root: an exclusive ``flock`` held for as long as the process runs the root's stages.

Two ``flywheel iterate`` on one root would share training checkpoint directories and prune each other's, race
the renames that publish outputs and open duplicate MLflow runs. The first process to open a run takes the
root's lock; a second one stops with one line naming the holder (its pid, host, command and start time), or
waits for it when ``run.lock_wait_s`` > 0.

The lock is the kernel's (``fcntl.flock``), so a killed holder -- ``kill -9`` included -- never leaves a stale
lock behind: the kernel drops it with the process. A local root keeps its lock file at ``{root}/.lock``; a
remote root (``s3://...``) has no file lock, so its lock lives in the local cache directory, keyed by the root's
URI: it guards the root against a second run on the same machine (runs on two machines must use two roots).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
import time

from flywheel.config import redact
from flywheel.errors import FlywheelError

_HELD: dict[str, tuple[int, int]] = {}  # lock path -> (fd, holds in this process)


def lock_path(root: str, cache_dir: str) -> str:
    """Where the lock for run root ``root`` lives (see the module docstring)."""
    if "://" not in root or root.startswith("file://"):
        local = root.removeprefix("file://")
        os.makedirs(local, exist_ok=True)
        return os.path.join(local, ".lock")
    key = hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:16]
    folder = os.path.join(os.path.expanduser(cache_dir), "locks")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{key}.lock")


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f"pid {info['pid']} on {info['host']} since {since} ({info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def acquire(root: str, cache_dir: str, wait_s: float = 0.0) -> str:
    """Take the run root's lock for this process (again: counted); returns the lock file's path.

    Raises:
        FlywheelError: another process holds it (and ``wait_s`` passed without it being released).
    """
    path = lock_path(root, cache_dir)
    if path in _HELD:
        fd, n = _HELD[path]
        _HELD[path] = (fd, n + 1)
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline, told = time.monotonic() + max(0.0, wait_s), False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(fd)
                os.close(fd)
                hint = "wait for it or stop it" + ("" if wait_s > 0 else ", or set run.lock_wait_s to wait")
                raise FlywheelError(f"run root {root} is in use by {holder}: {hint}") from None
            if not told:
                print(f"waiting for run root {root}, held by {_holder(fd)}", file=sys.stderr, flush=True)
                told = True
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": redact(" ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]))[:200],
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _HELD[path] = (fd, 1)
    return path


def release(path: str) -> None:
    """Give back one hold of the lock at ``path``; the last one unlocks it."""
    if path not in _HELD:
        return
    fd, n = _HELD.pop(path)
    if n > 1:
        _HELD[path] = (fd, n - 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
