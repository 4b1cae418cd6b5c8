"""SIGTERM on the default (Prefect) path: the run stops at once with one line and exit 143.

A Prefect flow run puts its own SIGTERM handler in; before ``stop_on_sigterm`` ran at each stage's start, a
SIGTERM inside a stage of round 2 was taken as a crash, the stage was retried and the run went on for another
minute, then ended with exit 1 and no word. Round 1 started Ray (whose start installs flywheel's handler), so
round 2's flow run is the one that puts Prefect's back in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "configs", "tiny.yaml")


def test_sigterm_inside_a_stage_stops_the_run(tmp_path):
    console = tmp_path / "console.log"
    with open(console, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flywheel.cli", "iterate", "--rounds", "2", "--config", TINY,
             f"run.root={tmp_path / 'run'}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 900
            while "round 2: prompts starting" not in console.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, console.read_text()[-3000:]
                time.sleep(0.5)
            time.sleep(2)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = console.read_text()
    assert rc == 143, text[-3000:]
    assert time.monotonic() - t0 < 60
    assert "flywheel: terminated; finished stages are kept" in text
    assert text.count("round 2: prompts starting") == 1, "the stage was retried after SIGTERM"
    assert "Traceback" not in text
    assert not (tmp_path / "run" / "round-002" / "prompts" / "_MANIFEST.json").exists()
