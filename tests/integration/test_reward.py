"""Reward model on real engines: vLLM pooling scores vs transformers, and a Ray Train + DeepSpeed fit.

Tolerance: on the float32 tiny reward model, vLLM's pooling runner (CPU, eager) and transformers give the
same raw head outputs within ``SCORE_TOL`` = 1e-3 absolute per attribute (measured differences are ~1e-6);
the weighted reward then agrees within ``sum(|w|) * SCORE_TOL`` = 2.3e-3.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

SCORE_TOL = 1e-3

CONVERSATIONS = [
    [{"role": "user", "content": "What is 7 + 5?"}, {"role": "assistant", "content": "7 + 5 = 12.\nThe answer is 12."}],
    [{"role": "user", "content": "What is 7 + 5?"}, {"role": "assistant", "content": "The answer is 13."}],
    [
        {"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "Apple."},
        {"role": "user", "content": "Another one, in capitals."},
        {"role": "assistant", "content": "BANANA."},
    ],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why is the sky blue?"},
        {
            "role": "assistant",
            "content": "Air scatters short blue wavelengths more than red ones, so blue light "
            "reaches us from every direction of the sky.",
        },
    ],
]


def _engine_cfg():
    from flywheel.config import EngineConfig

    return EngineConfig(num_actors=1, cpus_per_actor=1, dtype="float32", max_model_len=512, batch_size=3)


def test_vllm_pooling_scores_match_transformers(tiny_reward_dir, ray_local):
    from flywheel.config import RayConfig
    from flywheel.engines.reward_scoring import vllm_scorer
    from flywheel.judges.attributes import aggregate
    from flywheel.reward.hf_scorer import HFRewardScorer

    expected = HFRewardScorer(tiny_reward_dir, batch_size=2).score(CONVERSATIONS)
    score, close = vllm_scorer(tiny_reward_dir, _engine_cfg(), RayConfig(num_cpus=2))
    try:
        got = score(CONVERSATIONS)  # two batches of at most 3 conversations, reassembled in order
    finally:
        close()
    assert len(got) == len(expected) == 4 and all(len(s) == 5 for s in got)
    worst = max(abs(a - b) for g, e in zip(got, expected) for a, b in zip(g, e))
    print(f"max |vllm - transformers| = {worst:.2e}")
    assert worst < SCORE_TOL
    for g, e in zip(got, expected):
        assert aggregate(g) == pytest.approx(aggregate(e), abs=2.3e-3)
    # different responses get different scores: the head reads the response, not a constant
    assert max(abs(a - b) for a, b in zip(got[0], got[1])) > 1e-4


def test_reward_training_on_ray_deepspeed_then_vllm_eval(tmp_path, cache_dir, ray_local):
    from flywheel.config import RayConfig
    from flywheel.models import TinyModelConfig
    from flywheel.reward.config import RewardConfig
    from flywheel.reward.drivers import evaluate_models, train
    from flywheel.reward.helpsteer_set import build
    from flywheel.train.config import StageConfig, TrainConfig

    train_rows, held_rows = build()
    data, held = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in train_rows[:48]))
    held.write_text("".join(json.dumps(r) + "\n" for r in held_rows[:24]))
    rc = RewardConfig(
        backbone="tiny",
        trainable_layers=1,
        scorer="vllm",
        stage=StageConfig(lr=1e-3, batch_size=4, max_steps=4, max_len=128, lr_schedule="constant"),
    )
    metrics = train(
        [str(data)],
        rc,
        TrainConfig(num_workers=2, zero_stage=2),
        "tiny",
        str(tmp_path / "rm"),
        cache_dir,
        tiny=TinyModelConfig(arch="llama"),
    )
    assert metrics["steps"] == 4 and [r["step"] for r in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["trainable_params"] > 0
    results = evaluate_models(
        {"trained": metrics["out_dir"], "untrained_head": metrics["init_model"]},
        str(held),
        rc,
        {"helpfulness": 0.3, "correctness": 0.74, "coherence": 0.46, "complexity": 0.47, "verbosity": -0.33},
        _engine_cfg(),
        RayConfig(num_cpus=2),
        str(tmp_path / "eval"),
    )
    for name in ("trained", "untrained_head"):
        assert 0.0 <= results[name]["accuracy/all"] <= 1.0 and results[name]["pairs/all"] > 0
    assert (tmp_path / "eval" / "pairs-trained.jsonl").is_file()
