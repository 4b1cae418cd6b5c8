"""Judging section of the flywheel config (OmegaConf structured dataclass)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.judges.attributes import ATTRIBUTES, DEFAULT_WEIGHTS
from flywheel.judges.gaps import DEFAULT_MIN_JUDGED_GAP
from flywheel.judges.select import POLICIES

# the keys the judge stage reads (scoring, verifiers, the LLM judge); the rest shape selection in ``datasets`` only,
# so changing them re-runs ``datasets`` but never re-scores the round
SCORING_KEYS = ("weights", "use_verifiers", "llm_judge", "judge_model", "judge_pairs_per_prompt", "seed")


@dataclass
class JudgeConfig:
    """How responses are judged and turned into SFT and preference data.

    Attributes:
        weights: HelpSteer2 attribute -> weight of the scalar reward (Nemotron-4-340B-Reward card).
        policy: preference pair policy, one of ``max_min``, ``max_random``, ``best_second``.
        min_gap: smallest reward gap of a reward-model pair.
        min_judged_gap: smallest reward gap of a pair decided by a verifier or the LLM judge, > 0: the rewards
            of such a pair are reordered (and widened to this gap) so that RPO's target gap has the judged
            sign (``flywheel.judges.gaps.judged_gap``; 0.5 reward units, the metrics' hard-pair gap).
        sft_threshold: minimum reward of an SFT response; None keeps the best response regardless.
        dialogue_threshold: minimum reward of a role-played dialogue kept for SFT; None: ``dialogue_keep`` decides.
        dialogue_keep: when no threshold is set, the best-rated share of the round's dialogues kept for SFT
            (the reward model filters them, as in the report); None keeps every dialogue.
        sft_best_only: keep one SFT response per prompt (else all above the threshold).
        use_verifiers: let ground truth (math answers, instruction constraints) decide where it applies.
        repair: when every response to a prompt fails its verifiers, mechanically repair the best one
            (``flywheel.judges.repair``) and keep it as a ``verifier_repair`` pair and, if the prompt has
            no other SFT row, as an SFT row; needs ``use_verifiers``.
        complete_only: a response the engine cut at ``max_tokens`` is never chosen, kept for SFT or repaired
            (it may be a pair's rejected side); off keeps every response (random test models never stop). Either
            way a cut response in the data carries ``"cut": True`` and no end of turn is trained after it.
        llm_judge: judge pairs with an LLM in both orders instead of the reward model.
        judge_model: model id or path of the LLM judge; "" means the current generator.
        judge_pairs_per_prompt: response pairs per prompt sent to the LLM judge.
        if_variants: instruction variants per chosen response to a plain prompt (``flywheel.judges.variants``):
            the same question with instructions repair can satisfy, the repaired response as SFT answer and
            (repaired, original) as a verifier pair; 0 = none.
        variant_pairs: also put the variants' (repaired, original) pairs in the preference set; off, the
            variants are SFT rows only (the preference stages then train on the judged pairs alone, and take
            a fraction of the time).
        variant_derived: variants may also carry content instructions (use these words, this many sentences,
            at least N words, two responses) whose parameters are read off the answer itself
            (``flywheel.judges.backtranslate``), not only the form instructions repair can satisfy.
        variant_focus: draw the variants' instruction kinds in proportion to how often the generator failed
            each on the round's own instruction-following prompts (``kind_failure_weights``), not uniformly.
        seed: seed of the random choices in selection.
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    policy: str = "max_min"
    min_gap: float = 0.0
    min_judged_gap: float = DEFAULT_MIN_JUDGED_GAP
    sft_threshold: float | None = None
    dialogue_threshold: float | None = None
    dialogue_keep: float | None = 0.5
    sft_best_only: bool = True
    use_verifiers: bool = True
    repair: bool = True
    complete_only: bool = True
    llm_judge: bool = False
    judge_model: str = ""
    judge_pairs_per_prompt: int = 1
    if_variants: int = 0
    variant_pairs: bool = True
    variant_derived: bool = False
    variant_focus: bool = False
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
    if not math.isfinite(cfg.min_judged_gap) or cfg.min_judged_gap <= 0:
        raise FlywheelError(f"judges.min_judged_gap must be a finite number > 0, got {cfg.min_judged_gap}")
    if not isinstance(cfg.repair, bool):
        raise FlywheelError(f"judges.repair must be true or false, got {cfg.repair!r}")
    if not isinstance(cfg.complete_only, bool):
        raise FlywheelError(f"judges.complete_only must be true or false, got {cfg.complete_only!r}")
    if cfg.sft_threshold is not None and not math.isfinite(cfg.sft_threshold):
        raise FlywheelError(f"judges.sft_threshold must be finite or null, got {cfg.sft_threshold}")
    if cfg.dialogue_keep is not None and not 0.0 < cfg.dialogue_keep <= 1.0:
        raise FlywheelError(f"judges.dialogue_keep must be in (0, 1] or null, got {cfg.dialogue_keep}")
    if cfg.dialogue_threshold is not None and not math.isfinite(cfg.dialogue_threshold):
        raise FlywheelError(f"judges.dialogue_threshold must be finite or null, got {cfg.dialogue_threshold}")
    if not 0 <= cfg.if_variants <= 16:
        raise FlywheelError(f"judges.if_variants must be in [0, 16], got {cfg.if_variants}")
    if not isinstance(cfg.variant_pairs, bool):
        raise FlywheelError(f"judges.variant_pairs must be true or false, got {cfg.variant_pairs!r}")
    if not isinstance(cfg.variant_derived, bool):
        raise FlywheelError(f"judges.variant_derived must be true or false, got {cfg.variant_derived!r}")
    if not isinstance(cfg.variant_focus, bool):
        raise FlywheelError(f"judges.variant_focus must be true or false, got {cfg.variant_focus!r}")
    if cfg.judge_pairs_per_prompt < 1:
        raise FlywheelError(f"judges.judge_pairs_per_prompt must be >= 1, got {cfg.judge_pairs_per_prompt}")
