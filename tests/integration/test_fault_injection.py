"""Fault injection: kill -9 a whole run inside every stage of a round, rerun it each time, compare with a clean run.

One tiny-profile round with the run-level reward stage (real Ray, vLLM, DeepSpeed under Ray Train, MLflow) runs
on two roots: once uninterrupted, and once killed (SIGKILL to its whole process group: driver, Ray, engines,
training workers) as soon as each stage is seen running, then rerun, until a rerun finishes. Afterwards:

* every kill landed inside a stage that had not finished, and no stage finished before a kill was redone;
* every prompt the responses stage took was answered exactly ``samples_per_prompt`` times;
* what is deterministic across a restart equals the clean run: the prompts, which prompts were answered and how
  often, and the set of published outputs of every stage.

Slow (about 15 minutes on 2 cores): ``make test-slow``.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (round, stage, the console text that shows the stage at work)
STAGES = [
    (0, "reward", "reward step 1/"),
    (1, "prompts", "round 1: prompts starting"),
    (1, "dialogues", "round 1: dialogues starting"),
    (1, "responses", "round 1: responses starting"),
    (1, "judge", "round 1: judge starting"),
    (1, "sft_code", "sft_code step 1/"),
    (1, "sft", "sft step 1/"),
    (1, "dpo", "dpo step 1/"),
    (1, "rpo_1", "rpo_1 step 1/"),
    (1, "evaluate", "round 1: evaluate starting"),
]
ALL = [(0, "reward")] + [(1, s) for s in ("prompts", "dialogues", "responses", "judge", "datasets")]
ALL += [(1, s) for s in ("sft_code", "sft", "dpo", "rpo_1", "evaluate", "promote")]


def _cmd(root: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flywheel.cli",
        "iterate",
        "--rounds",
        "1",
        "--no-prefect",
        "--config",
        os.path.join(ROOT, "configs", "tiny.yaml"),
        f"run.root={root}",
        "eval.always_promote=true",
        "models.reward=trained",
    ]


def _manifest(root: str, r: int, stage: str) -> dict | None:
    path = os.path.join(root, f"round-{r:03d}", stage, "_MANIFEST.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _rows(root: str, r: int, stage: str, pattern: str = "part-*.jsonl") -> list[dict]:
    out = []
    for path in sorted(glob.glob(os.path.join(root, f"round-{r:03d}", stage, "**", pattern), recursive=True)):
        with open(path) as f:
            out += [json.loads(line) for line in f if line.strip()]
    return out


def _finished(root: str) -> dict[tuple[int, str], float]:
    return {(r, s): m["finished_at"] for r, s in ALL if (m := _manifest(root, r, s)) is not None}


def _kill_inside(root: str, log_path: str, marker: str, timeout: float = 900) -> bool:
    """Start the run; SIGKILL its process group just after ``marker`` shows. False if it ended first."""
    with open(log_path, "a") as log:
        proc = subprocess.Popen(_cmd(root), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout
    start = os.path.getsize(log_path)
    while time.time() < deadline and proc.poll() is None:
        with open(log_path) as f:
            f.seek(start)
            if marker in f.read():
                break
        time.sleep(0.2)
    time.sleep(0.3)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    clean, faulty = str(base / "clean"), str(base / "faulty")
    res = subprocess.run(_cmd(clean), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    log_path = str(base / "faulty.log")
    kills, before = [], {}
    for r, stage, marker in STAGES:
        if _manifest(faulty, r, stage) is not None:
            continue  # finished inside an earlier attempt, before the kill reached it
        done = _finished(faulty)
        if _kill_inside(faulty, log_path, marker):
            kills.append((r, stage, (r, stage) not in _finished(faulty)))
            before.update(done)
    res = subprocess.run(_cmd(faulty), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return {"clean": clean, "faulty": faulty, "kills": kills, "before": before, "log": log_path}


def test_every_stage_was_killed_and_no_finished_stage_was_redone(runs):
    faulty = runs["faulty"]
    killed = [stage for _, stage, _ in runs["kills"]]
    inside = [stage for _, stage, at_work in runs["kills"] if at_work]
    assert {"reward", "prompts", "responses", "sft", "dpo", "rpo_1", "evaluate"} <= set(killed), killed
    assert len(inside) >= 6, f"kills that found their stage unfinished: {inside} of {killed}"
    after = _finished(faulty)
    assert set(after) == set(ALL)
    for key, finished_at in runs["before"].items():
        assert after[key] == finished_at, f"{key} was redone"


def test_every_prompt_is_answered_exactly_k_times(runs):
    rows = _rows(runs["faulty"], 1, "responses")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["prompt_id"]] = counts.get(row["prompt_id"], 0) + 1
    assert counts and set(counts.values()) == {2}  # tiny.yaml: samples_per_prompt 2
    assert len({(r["prompt_id"], r["sample"]) for r in rows}) == len(rows)


def test_what_is_deterministic_equals_the_uninterrupted_run(runs):
    """Prompts come out the same; responses are sampled (temperature > 0) from an engine seeded once per
    process (vLLM's CPU engine cannot take per-request seeds), so after a restart they are other samples of the
    same prompts: the same prompts, each answered ``samples_per_prompt`` times."""
    clean, faulty = runs["clean"], runs["faulty"]

    def texts(root: str, stage: str) -> list[tuple]:
        return sorted((str(r.get("id")), json.dumps(r.get("messages"))) for r in _rows(root, 1, stage))

    assert texts(clean, "prompts") and texts(clean, "prompts") == texts(faulty, "prompts")

    def answered(root: str) -> list[tuple]:
        return sorted((r["prompt_id"], r["sample"]) for r in _rows(root, 1, "responses"))

    assert answered(clean) == answered(faulty)
    for r, stage in ALL:  # the same stages published, each with the outputs the clean run has
        assert set(_manifest(clean, r, stage)["outputs"]) == set(_manifest(faulty, r, stage)["outputs"]), stage
