"""LoRA (peft) on policy jobs: only adapters train, the export is a plain merged checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from flywheel.errors import FlywheelError
from flywheel.train.config import LoraConfig, StageConfig, TrainConfig, validate_train
from flywheel.train.job import LocalRuntime, TrainJob, job_fingerprint, run_job
from flywheel.train.lora import apply_lora, trainable_parameters

ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"count to {n}"},
            {"role": "assistant", "content": " ".join(map(str, range(n)))},
        ]
    }
    for n in range(2, 10)
]
TARGETS = ("q_proj", "v_proj")


def _weights(path: str) -> dict[str, torch.Tensor]:
    with safe_open(f"{path}/model.safetensors", framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)


def _job(tmp_path, init: str, lora) -> TrainJob:
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    stage = StageConfig(lr=5e-2, batch_size=4, max_steps=3, lr_schedule="constant", max_len=64)
    return TrainJob("sft", "sft", init, None, [str(data)], str(tmp_path / "out"), stage, lora=lora)


def test_lora_trains_adapters_only_and_exports_merged_weights(tmp_path, tiny_policy_dir):
    lora = LoraConfig(enabled=True, r=4, alpha=8, target_modules=list(TARGETS))
    metrics = run_job(_job(tmp_path, tiny_policy_dir, lora), LocalRuntime())
    assert metrics["steps"] == 3
    base, out = _weights(tiny_policy_dir), _weights(str(tmp_path / "out"))
    assert set(out) == set(base)  # merged: no adapter tensors, the same names as the base model
    changed = {k for k in base if not torch.equal(base[k], out[k])}
    assert changed and all(any(t in k for t in TARGETS) for k in changed), sorted(changed)
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))  # loads as a plain checkpoint


def test_lora_is_part_of_the_job_fingerprint(tmp_path, tiny_policy_dir):
    full = _job(tmp_path, tiny_policy_dir, None)
    a = _job(tmp_path, tiny_policy_dir, LoraConfig(enabled=True, r=4))
    b = _job(tmp_path, tiny_policy_dir, LoraConfig(enabled=True, r=8))
    off = _job(tmp_path, tiny_policy_dir, LoraConfig(enabled=False, r=8))
    fps = {job_fingerprint(j, 0.0) for j in (full, a, b)}
    assert len(fps) == 3 and job_fingerprint(off, 0.0) == job_fingerprint(full, 0.0)


def test_apply_lora_counts_and_errors(tiny_policy_dir):
    from transformers import AutoModelForCausalLM

    model = apply_lora(AutoModelForCausalLM.from_pretrained(tiny_policy_dir), LoraConfig(enabled=True, r=2))
    trainable, total = trainable_parameters(model)
    assert 0 < trainable < total // 10
    with pytest.raises(FlywheelError, match="target_modules"):
        apply_lora(
            AutoModelForCausalLM.from_pretrained(tiny_policy_dir),
            LoraConfig(enabled=True, target_modules=["no_such_proj"]),
        )


def test_lora_config_validation():
    validate_train(TrainConfig(lora=LoraConfig(enabled=True)))
    with pytest.raises(FlywheelError, match="zero_stage"):
        validate_train(TrainConfig(zero_stage=3, lora=LoraConfig(enabled=True)))
    with pytest.raises(FlywheelError, match="lora.r"):
        validate_train(TrainConfig(lora=LoraConfig(enabled=True, r=0)))
