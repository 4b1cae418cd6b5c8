"""The reward loop and job in-process on a tiny model: masked MSE falls, the export is a 5-output model."""

from __future__ import annotations

import json
import os

import pytest
import torch

from flywheel.reward.data import RewardExample, collate_reward
from flywheel.reward.loop import freeze_lower_layers, reward_step
from flywheel.train.config import StageConfig
from flywheel.train.engine import TorchEngine
from flywheel.train.job import LocalRuntime


class _Out:
    def __init__(self, logits):
        self.logits = logits


class _Constant(torch.nn.Module):
    """Predicts the same 5 values for every sequence."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.nn.Parameter(torch.tensor(values))

    def forward(self, input_ids, attention_mask, use_cache=False):
        return _Out(self.values.expand(input_ids.shape[0], 5))


def test_reward_step_masks_missing_attributes():
    model = _Constant([1.0, 1.0, 1.0, 1.0, 1.0])
    engine = TorchEngine(model, torch.optim.SGD(model.parameters(), lr=0.1))
    batch = collate_reward(
        [
            RewardExample([3, 4], [3.0, 1.0, 1.0, 1.0, 1.0], [True, True, False, False, False]),
            RewardExample([5], [1.0, 1.0, 1.0, 1.0, 9.0], [False, False, False, False, True]),
        ],
        pad_id=0,
    )
    res = reward_step(engine, batch)
    # present errors: 2 (first row, helpfulness), 0 (correctness), 8 (second row, verbosity)
    assert res.loss.item() == pytest.approx((4 + 0 + 64) / 3)
    assert res.metrics["mae"] == pytest.approx((2 + 0 + 8) / 3)


def test_freeze_keeps_top_layers_norm_and_head(tiny_reward_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_reward_dir)
    n = freeze_lower_layers(model, 1)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert "score.weight" in trainable and "model.norm.weight" in trainable
    assert any(t.startswith("model.layers.1.") for t in trainable)
    assert not any(t.startswith(("model.layers.0.", "model.embed_tokens")) for t in trainable)
    assert n == sum(p.numel() for name, p in model.named_parameters() if name in trainable)


def test_reward_job_trains_exports_and_skips_when_done(tmp_path, tiny_reward_dir):
    from transformers import AutoModelForSequenceClassification

    from flywheel.reward.job import RewardJob, run_reward_job

    rows = [
        {
            "prompt": f"Say {w}.",
            "response": w,
            "helpfulness": 4.0 if i % 2 else 0.0,
            "correctness": 2.0,
            "coherence": 3.0,
            "complexity": 1.0,
            "verbosity": 1.0,
        }
        for i, w in enumerate(["a", "b", "c", "d"] * 3)
    ]
    data = tmp_path / "hs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = str(tmp_path / "rm")
    stage = StageConfig(lr=3e-3, batch_size=4, max_steps=8, max_len=64, lr_schedule="constant")
    job = RewardJob("reward", "reward", tiny_reward_dir, None, [str(data)], out, stage, trainable_layers=-1)
    metrics = run_reward_job(job, LocalRuntime())
    hist = metrics["history"]
    assert len(hist) == 8 and hist[-1]["loss"] < hist[0]["loss"] / 2
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 5 and model.config.problem_type == "regression"
    assert os.path.isfile(os.path.join(out, "flywheel_train.json")) and not os.path.exists(out + ".ckpt")
    assert run_reward_job(job, LocalRuntime())["skipped"] is True
