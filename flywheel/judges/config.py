"""Judging section of the flywheel config (OmegaConf structured dataclass)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.judges.attributes import ATTRIBUTES, DEFAULT_WEIGHTS
from flywheel.judges.select import POLICIES


@dataclass
class JudgeConfig:
    """How responses are judged and turned into SFT and preference data.

    Attributes:
        weights: HelpSteer2 attribute -> weight of the scalar reward (Nemotron-4-340B-Reward card).
        policy: preference pair policy, one of ``max_min``, ``max_random``, ``best_second``.
        min_gap: smallest reward gap of a reward-model pair.
        sft_threshold: minimum reward of an SFT response; None keeps the best response regardless.
        dialogue_threshold: minimum reward of a role-played dialogue kept for SFT; None keeps every dialogue.
        sft_best_only: keep one SFT response per prompt (else all above the threshold).
        use_verifiers: let ground truth (math answers, instruction constraints) decide where it applies.
        llm_judge: judge pairs with an LLM in both orders instead of the reward model.
        judge_model: model id or path of the LLM judge; "" means the current generator.
        judge_pairs_per_prompt: response pairs per prompt sent to the LLM judge.
        seed: seed of the random choices in selection.
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    policy: str = "max_min"
    min_gap: float = 0.0
    sft_threshold: float | None = None
    dialogue_threshold: float | None = None
    sft_best_only: bool = True
    use_verifiers: bool = True
    llm_judge: bool = False
    judge_model: str = ""
    judge_pairs_per_prompt: int = 1
    seed: int = 0

    def validate(self) -> None:
        """Raise ``FlywheelError`` on the first invalid field (see ``validate_judge_config``)."""
        validate_judge_config(self)


def validate_judge_config(cfg: Any) -> None:
    """Check a ``JudgeConfig`` or an OmegaConf node of one.

    Raises:
        FlywheelError: naming the first invalid field.
    """
    weights = dict(cfg.weights)
    if set(weights) != set(ATTRIBUTES):
        raise FlywheelError(f"judges.weights must name exactly {list(ATTRIBUTES)}, got {sorted(weights)}")
    if not all(math.isfinite(float(w)) for w in weights.values()):
        raise FlywheelError(f"judges.weights has a non-finite value: {weights}")
    if cfg.policy not in POLICIES:
        raise FlywheelError(f"judges.policy {cfg.policy!r} is unknown; expected one of {POLICIES}")
    if not math.isfinite(cfg.min_gap) or cfg.min_gap < 0:
        raise FlywheelError(f"judges.min_gap must be a finite number >= 0, got {cfg.min_gap}")
    if cfg.sft_threshold is not None and not math.isfinite(cfg.sft_threshold):
        raise FlywheelError(f"judges.sft_threshold must be finite or null, got {cfg.sft_threshold}")
    if cfg.dialogue_threshold is not None and not math.isfinite(cfg.dialogue_threshold):
        raise FlywheelError(f"judges.dialogue_threshold must be finite or null, got {cfg.dialogue_threshold}")
    if cfg.judge_pairs_per_prompt < 1:
        raise FlywheelError(f"judges.judge_pairs_per_prompt must be >= 1, got {cfg.judge_pairs_per_prompt}")
