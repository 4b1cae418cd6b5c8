"""A round flow run on its own (a deployment served from the Prefect UI) gives the run root back when it ends."""

import os
import subprocess
import sys

import flows.round as round_flows
from flywheel.rounds import close_all, open_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _fake_rounds(first, last, config, overrides, call, close=True):
    """The real run (config, store, run-root lock) without the stages."""
    open_run(config, overrides)
    if close:
        close_all()
    return {first: {"promoted": False}}


def _free_for_another_process(root: str, cache: str) -> bool:
    code = f"from flywheel import runlock; runlock.release(runlock.acquire({root!r}, {cache!r}, 0.0))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60).returncode == 0


def test_a_round_flow_on_its_own_releases_the_run_root(tmp_path, monkeypatch):
    monkeypatch.setattr(round_flows, "run_rounds", _fake_rounds)
    root, cache = str(tmp_path / "run"), str(tmp_path / "cache")
    round_flows.round_flow.fn(1, None, [f"run.root={root}", f"run.cache_dir={cache}", "tracking.enabled=false"])
    assert _free_for_another_process(root, cache)


def test_rounds_inside_iterate_keep_the_run_open_until_iterate_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(round_flows, "run_rounds", _fake_rounds)
    root, cache = str(tmp_path / "run"), str(tmp_path / "cache")
    round_flows._ITERATING["n"] += 1
    try:
        round_flows.round_flow.fn(1, None, [f"run.root={root}", f"run.cache_dir={cache}", "tracking.enabled=false"])
        assert not _free_for_another_process(root, cache)  # the next round reuses the run
    finally:
        round_flows._ITERATING["n"] -= 1
        close_all()
    assert _free_for_another_process(root, cache)
