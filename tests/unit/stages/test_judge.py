"""The judge stage (LLM-judge path with a scripted judge in place of the vLLM pool) and the datasets stage merge."""

from __future__ import annotations

import re
from collections import Counter

from flywheel.config import load_config
from flywheel.stages.common import Context, read_output
from flywheel.stages.judge import llm_judge
from flywheel.store import Store


class ScriptedJudge:
    """Prefers the longer response, except that on prompt "biased" it always answers A (position bias)."""

    def __init__(self):
        self.calls = 0

    def map(self, method, jobs, on_result):
        for key, (conversations, _sampling, n) in jobs:
            assert method == "chat" and n == 1
            texts = []
            for conv in conversations:
                body = conv[-1]["content"]
                a, b = re.search(r"## Response A\n\n(.*?)\n\n## Response B\n\n(.*?)\n\nWhich", body, re.S).groups()
                verdict = "A" if "biased" in body or len(a) >= len(b) else "B"
                texts.append([f"Reasoning... [[{verdict}]]"])
            self.calls += 1
            on_result(key, {"texts": texts, "tokens": 0, "seconds": 0.0})


class FakeEngines:
    def __init__(self):
        self.judge = ScriptedJudge()
        self.released = []
        self.seeds = []

    def release(self, kind=None):
        self.released.append(kind)

    def chat(self, model_dir, seed=None):
        self.seeds.append(seed)
        return self.judge


def _row(pid, text, verified, reward):
    return {
        "prompt_id": pid,
        "verified": verified,
        "reward": reward,
        "messages": [{"role": "user", "content": f"question {pid}"}, {"role": "assistant", "content": text}],
    }


def test_llm_judge_keeps_pairs_both_orders_agree_on(tmp_path):
    judge_dir = tmp_path / "judge"
    judge_dir.mkdir()
    (judge_dir / "config.json").write_text("{}")
    (judge_dir / "model.safetensors").write_bytes(b"")
    cfg = load_config(
        None,
        [
            f"run.root={tmp_path / 'run'}",
            f"judges.judge_model={judge_dir}",
            "judges.llm_judge=true",
            "engine.batch_size=4",
        ],
    )
    ctx = Context(cfg=cfg, store=Store(str(tmp_path / "run")), round=1, engines=FakeEngines())
    scored = [
        _row("p1", "short", None, 1.0),
        _row("p1", "a longer answer", None, 0.5),  # judged: longer wins
        _row("biased", "x", None, 2.0),
        _row("biased", "yy", None, 1.0),  # A twice: dropped
        _row("p3", "right", True, 3.0),
        _row("p3", "wrong", False, 0.0),  # ground truth settles it
    ]
    outputs, metrics = llm_judge(ctx, "fp0", scored)
    pairs = list(read_output(ctx, {"stage": "judge", "outputs": outputs}, "llm_pairs"))
    assert [(p["prompt_id"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [
        ("p1", "a longer answer", "short")
    ]
    assert pairs[0]["judge"] == "llm_judge" and (pairs[0]["reward_chosen"], pairs[0]["reward_rejected"]) == (0.5, 1.0)
    assert metrics["llm/seen"] == 2 and metrics["llm/kept"] == 1 and metrics["llm/skipped/position_bias"] == 1
    assert ctx.engines.released == ["reward"] and ctx.engines.seeds == [cfg.run.seed]  # round 1: the run's seed
    verdicts = list(read_output(ctx, {"stage": "judge", "outputs": outputs}, "llm_verdicts"))
    assert len(verdicts) == 2 and all("[[" in v["text_ab"] and "[[" in v["text_ba"] for v in verdicts)


def _scored(pid, text, verified, reward):
    return {
        "prompt_id": pid,
        "verified": verified,
        "reward": reward,
        "messages": [{"role": "user", "content": pid}, {"role": "assistant", "content": text}],
    }


def test_llm_judge_sees_only_prompts_ground_truth_leaves_open():
    from flywheel.stages.judge import undecided

    rows = [
        _scored("p1", "a", True, 1.0),
        _scored("p1", "b", False, 2.0),  # settled by the verifier
        _scored("p2", "a", True, 1.0),
        _scored("p2", "b", None, 2.0),  # no verified-False: open
        _scored("p3", "a", None, 1.0),
        _scored("p3", "b", None, 0.5),
    ]
    assert [(r["prompt_id"], r["messages"][-1]["content"]) for r in undecided(rows)] == [
        ("p2", "a"),
        ("p2", "b"),
        ("p3", "a"),
        ("p3", "b"),
    ]


def test_datasets_keep_verifier_pairs_and_replace_reward_pairs_by_llm_pairs():
    from flywheel.stages.datasets import merge_llm_pairs

    pairs = [{"prompt_id": "p1", "judge": "verifier"}, {"prompt_id": "p2", "judge": "reward_model"}]
    llm = [
        {"prompt_id": "p1", "judge": "llm_judge", "lineage": {}},  # p1 is settled by ground truth
        {"prompt_id": "p3", "judge": "llm_judge", "reward_chosen": 1.5, "reward_rejected": 0.5, "lineage": {}},
    ]
    counts = Counter({"verifier": 1, "reward_model": 1})
    merged = merge_llm_pairs(pairs, llm, counts)
    assert merged == [
        {"prompt_id": "p1", "judge": "verifier"},
        {"prompt_id": "p3", "judge": "llm_judge", "reward_chosen": 1.5, "reward_rejected": 0.5},
    ]
    assert counts == Counter({"verifier": 1, "llm_judge": 1})


def test_judge_fingerprint_covers_every_judges_key_the_stage_reads():
    """The judge stage fingerprints SCORING_KEYS only (selection keys re-run datasets, not scoring): each
    ``jc.<key>`` or ``cfg.judges.<key>`` the stage reads must be among them, or a changed key would be missed."""
    import ast
    import dataclasses
    import inspect

    import flywheel.stages.judge as judge_stage
    from flywheel.judges.config import SCORING_KEYS, JudgeConfig

    fields = {f.name for f in dataclasses.fields(JudgeConfig)}
    assert set(SCORING_KEYS) <= fields
    read = set()
    for node in ast.walk(ast.parse(inspect.getsource(judge_stage))):
        if isinstance(node, ast.Attribute) and node.attr in fields:
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "jc") or (
                isinstance(owner, ast.Attribute) and owner.attr == "judges"
            ):
                read.add(node.attr)
    assert {"weights", "llm_judge", "judge_pairs_per_prompt"} <= read  # the walk sees the stage's reads
    assert read <= set(SCORING_KEYS), sorted(read - set(SCORING_KEYS))
    assert not {"variant_focus", "if_variants", "policy", "min_gap"} & set(SCORING_KEYS)
