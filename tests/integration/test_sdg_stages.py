"""Synthetic data stages on real Ray + vLLM with tiny models: an engine actor is killed mid-generation.

One module-scoped run: ``prompts`` (every pipeline) while an actor is ``ray.kill``-ed right after the first part
is written, then ``dialogues`` and ``responses`` from two response models. Minutes on 2 cores; run it under the
heavy lock:
    flock /tmp/flywheel-heavy.lock .venv/bin/python -m pytest -m integration tests/integration/test_sdg_stages.py
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parts(run_root: str) -> dict[str, tuple[str, int]]:
    """Every part file under the run: path -> (sha256, mtime_ns)."""
    out = {}
    for path in glob.glob(os.path.join(run_root, "round-001", "**", "part-*.jsonl"), recursive=True):
        out[path] = (hashlib.sha256(open(path, "rb").read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def sdg_run(tmp_path_factory, tiny_policy_dir, tiny_llama_dir):
    import ray

    from flywheel.config import load_config
    from flywheel.engines.cache import EngineCache
    from flywheel.stages import dialogues, prompts, responses
    from flywheel.stages.common import Context
    from flywheel.stages.roles import engines, model_dir
    from flywheel.store import Store

    run_root = str(tmp_path_factory.mktemp("sdg") / "run")
    cfg = load_config(
        os.path.join(ROOT, "configs", "tiny.yaml"),
        [
            f"run.root={run_root}",
            f"models.initial={tiny_policy_dir}",
            "engine.num_actors=2",
            "engine.batch_size=4",
            "generation.max_prompts=0",
            "tracking.enabled=false",
            f"generation.response_models=[{tiny_policy_dir},{tiny_llama_dir}]",
            "generation.retry_samples=3",
        ],
    )
    ctx = Context(cfg=cfg, store=Store(run_root), round=1, engines=EngineCache(cfg.engine, cfg.ray, cfg.run.seed))
    pool = engines(ctx).chat(model_dir(ctx, tiny_policy_dir, "generator"))
    seen: dict = {}
    plain_map = pool.map

    def map_then_kill(method, jobs, on_result, **kw):
        def first_part_then_kill(key, out):
            on_result(key, out)  # map_parts writes the part here
            if "victim" not in seen:
                seen["before"] = _parts(run_root)
                seen["victim"] = pool.actors[0]
                ray.kill(pool.actors[0])

        plain_map(method, jobs, first_part_then_kill, **kw)

    pool.map = map_then_kill
    try:
        man = prompts.run(ctx)
        pool.map = plain_map
        seen["actor_after"] = pool.actors[0]
        dman = dialogues.run(ctx)
        rman = responses.run(ctx)
        again = prompts.run(ctx)
    finally:
        ctx.engines.release()
        ray.shutdown()
    return {
        "root": run_root,
        "seen": seen,
        "pool": pool,
        "prompts": man,
        "dialogues": dman,
        "responses": rman,
        "again": again,
    }


def _rows(man: dict, name: str) -> list[dict]:
    return [json.loads(line) for p in man["outputs"][name]["parts"] for line in open(p["uri"]) if line.strip()]


def test_killed_actor_is_replaced_and_no_finished_part_is_lost(sdg_run):
    seen, pool = sdg_run["seen"], sdg_run["pool"]
    assert seen["before"], "the kill came after at least one part was written"
    assert pool.replacements >= 1 and seen["victim"] is not seen["actor_after"]
    after = _parts(sdg_run["root"])
    for path, digest in seen["before"].items():
        assert after[path] == digest, f"{path} was rewritten after the kill"
    man = sdg_run["prompts"]
    assert man["metrics"]["prompts"] == man["outputs"]["prompts"]["count"] > 0
    assert sdg_run["again"].get("skipped") is True


def test_prompt_rows_carry_lineage(sdg_run):
    rows = _rows(sdg_run["prompts"], "prompts")
    for row in rows:
        lin = row["lineage"]
        assert row["messages"][-1]["role"] == "user"
        assert lin["round"] == 1 and lin["stage"] == "prompts" and lin["generator"].startswith("initial:")
        assert lin["pipeline"] and len(lin["sampling_hash"]) == 16 and lin["config_hash"]
        if row["kind"].startswith("if_"):
            assert lin["instruction_kinds"] == [i["kind"] for i in row["meta"]["instructions"]]


def test_dialogues_and_responses_from_two_models(sdg_run):
    for d in _rows(sdg_run["dialogues"], "dialogues"):
        assert [m["role"] for m in d["messages"]] == ["user", "assistant"] * 3
        assert d["meta"]["persona"] and d["lineage"]["stage"] == "dialogues"
    from flywheel.judges.repair import unsolved

    rows = _rows(sdg_run["responses"], "responses")
    train = [p for p in _rows(sdg_run["prompts"], "prompts") if p["split"] == "train"]
    # two models x samples_per_prompt (2) per prompt, sample indices 0..3, one generator id per model
    first = [r for r in rows if r["sample"] < 4]
    assert len(first) == 4 * len(train)
    assert {r["generator"] for r in rows if r["sample"] < 2} == {"model:tiny-policy"}
    assert {r["generator"] for r in rows if 2 <= r["sample"] < 4} == {"model:tiny-llama"}
    assert len({r["id"] for r in rows}) == len(rows)
    # generation.retry_samples=3: the prompts with a verifier that all 4 samples fail (none repairable) get 3
    # more samples from the first model, indices 4..6; every other prompt gets none
    texts: dict = {}
    for r in first:
        texts.setdefault(r["prompt_id"], []).append(r["messages"][-1]["content"])
    hard = {p["id"] for p in train if unsolved(p.get("meta"), texts[p["id"]])}
    retried = [r for r in rows if r["sample"] >= 4]
    assert hard, "the tiny random model fails some verifiable prompt"
    assert len(retried) == 3 * len(hard) == 3 * sdg_run["responses"]["metrics"]["retry_prompts"]
    assert {r["prompt_id"] for r in retried} == hard
    assert {r["sample"] for r in retried} == {4, 5, 6}
    assert {r["generator"] for r in retried} == {"model:tiny-policy"}
    # each response model's rate is its own pass, not the retries'
    metrics = sdg_run["responses"]["metrics"]
    assert metrics["tokens_per_s/model:tiny-policy"] > 0 and metrics["tokens_per_s/model:tiny-llama"] > 0
