"""Reward-model section of the flywheel config (OmegaConf structured dataclass).

The defaults are the ``local`` profile: SmolLM2-135M backbone on 2 CPU workers, one short epoch over the
shipped HelpSteer2-format set, the top layers trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.train.config import StageConfig, validate_stage

SCORERS = ("vllm", "transformers")


def _reward_stage() -> StageConfig:
    return StageConfig(lr=1e-4, epochs=1.0, batch_size=8, max_len=256, lr_schedule="cosine", warmup_ratio=0.05)


@dataclass
class RewardConfig:
    """How the reward model is trained and evaluated (``flywheel reward train`` / ``eval``).

    Attributes:
        train_file: HelpSteer2-schema JSONL (``builtin:NAME`` = shipped in ``flywheel/data``).
        heldout_file: held-out rows (HelpSteer2 schema, paired per prompt) or preference rows.
        backbone: causal LM whose body gets the 5-output head: ``smollm2``, ``tiny``, a path, or ""
            for ``models.initial``.
        out_dir: where the trained model is exported; "" = ``{run.root}/reward/model`` (local roots).
        trainable_layers: top decoder layers trained (plus final norm and head); -1 = all.
        stage: optimisation (lr, epochs, batch size per worker, max_len, schedule).
        scorer: ``vllm`` (pooling runner in Ray actors) or ``transformers`` (in-process reference).
        hard_gap: ground-truth reward gap below which an evaluation pair is ``hard``.
        seed: seed of the fresh head.
    """

    train_file: str = "builtin:helpsteer_train.jsonl"
    heldout_file: str = "builtin:helpsteer_heldout.jsonl"
    backbone: str = ""
    out_dir: str = ""
    trainable_layers: int = 8
    stage: StageConfig = field(default_factory=_reward_stage)
    scorer: str = "vllm"
    hard_gap: float = 0.5
    seed: int = 0

    def validate(self) -> None:
        validate_reward_config(self)


def validate_reward_config(cfg: Any) -> None:
    """Raise ``FlywheelError`` naming the first invalid field of a ``RewardConfig``."""
    if cfg.scorer not in SCORERS:
        raise FlywheelError(f"reward.scorer must be one of {SCORERS}, got {cfg.scorer!r}")
    if cfg.trainable_layers < -1:
        raise FlywheelError(f"reward.trainable_layers must be -1 (all) or >= 0, got {cfg.trainable_layers}")
    if not math.isfinite(cfg.hard_gap) or cfg.hard_gap < 0:
        raise FlywheelError(f"reward.hard_gap must be a finite number >= 0, got {cfg.hard_gap}")
    validate_stage(cfg.stage, "reward.stage")
