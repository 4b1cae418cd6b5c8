"""Reward config loading, and the LLM-judge helpers of the judge and datasets stages."""

from __future__ import annotations

from collections import Counter

import pytest

from flywheel.errors import FlywheelError


def test_reward_overrides_apply_and_are_validated():
    from flywheel.reward.commands import load

    cfg, rc = load(None, ["reward.stage.lr=0.001", "reward.trainable_layers=2", "run.name=x"])
    assert rc.stage.lr == 0.001 and rc.trainable_layers == 2 and cfg.run.name == "x"
    assert rc.train_file == "builtin:helpsteer_train.jsonl" and rc.stage.max_len == 256
    with pytest.raises(FlywheelError, match="reward.scorer"):
        load(None, ["reward.scorer=onnx"])
    with pytest.raises(FlywheelError, match="reward.stage.lr must be > 0"):
        load(None, ["reward.stage.lr=0"])


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
