"""One writer per run root: a second process stops naming the holder, waits if asked, and a killed holder
leaves no stale lock (real processes, the kernel's flock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from flywheel import runlock
from flywheel.errors import FlywheelError

TINY = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "tiny.yaml")


def _holder(root: str, cache: str, seconds: float) -> subprocess.Popen:
    """Another process that takes the root's lock, says so, then holds it for ``seconds``."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from flywheel import runlock
        runlock.acquire({root!r}, {cache!r})
        print("held", flush=True)
        time.sleep({seconds})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_stops_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    root, cache = str(tmp_path / "run"), str(tmp_path / "cache")
    proc = _holder(root, cache, 60)
    try:
        with pytest.raises(FlywheelError) as err:
            runlock.acquire(root, cache)
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and root in msg and "run.lock_wait_s" in msg and "\n" not in msg
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    path = runlock.acquire(root, cache)  # kill -9 released it
    try:
        assert path == os.path.join(root, ".lock")
    finally:
        runlock.release(path)


def test_waits_for_the_holder_when_asked(tmp_path, capsys):
    root, cache = str(tmp_path / "run"), str(tmp_path / "cache")
    proc = _holder(root, cache, 1.5)
    try:
        path = runlock.acquire(root, cache, wait_s=30)
        runlock.release(path)
    finally:
        proc.wait()
    assert "waiting for run root" in capsys.readouterr().err
    proc = _holder(root, cache, 30)
    try:
        with pytest.raises(FlywheelError, match="wait for it or stop it$"):
            runlock.acquire(root, cache, wait_s=0.3)  # waited, still held: stops
    finally:
        proc.kill()
        proc.wait()


def test_holds_in_one_process_are_counted(tmp_path):
    root, cache = str(tmp_path / "run"), str(tmp_path / "cache")
    a = runlock.acquire(root, cache)
    b = runlock.acquire(root, cache)  # the same process again (a second open_run): no self-deadlock
    assert a == b
    runlock.release(a)
    probe = [sys.executable, "-c", f"from flywheel import runlock; runlock.acquire({root!r}, {cache!r})"]
    assert subprocess.run(probe, capture_output=True).returncode != 0  # one hold left: still locked
    runlock.release(b)
    assert subprocess.run(probe, capture_output=True).returncode == 0


def test_a_remote_root_locks_in_the_cache_keyed_by_its_uri(tmp_path):
    cache = str(tmp_path / "cache")
    one = runlock.lock_path("s3://bucket/runs/a", cache)
    assert one.startswith(os.path.join(cache, "locks"))
    assert one == runlock.lock_path("s3://bucket/runs/a/", cache)
    assert one != runlock.lock_path("s3://bucket/runs/b", cache)


def test_open_run_on_a_busy_root_is_one_line_and_writes_nothing(tmp_path):
    root, cache = str(tmp_path / "run"), str(tmp_path / "cache")
    proc = _holder(root, cache, 60)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "flywheel.cli", "stage", "prompts", "--round", "1", "--config", TINY]
            + [f"run.root={root}", f"run.cache_dir={cache}", "tracking.enabled=false"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        proc.kill()
        proc.wait()
    assert out.returncode != 0
    assert f"in use by pid {proc.pid}" in out.stderr and "Traceback" not in out.stderr
    assert sorted(os.listdir(root)) == [".lock"]
