"""Reward config loading and validation."""

from __future__ import annotations

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
