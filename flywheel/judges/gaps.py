"""The reward gap RPO trains toward, when a verifier or the LLM judge decided the pair.

RPO (Nemotron-4 340B, sec. 3.4.2) pulls the policy's implicit reward gap toward ``eta * (r*(chosen) -
r*(rejected))``, with ``r*`` the reward model's scores. When ground truth or the LLM judge picked the chosen
response, the reward model may still score it lower; left alone, RPO would then be pulled toward the
verified-wrong answer. :func:`judged_gap` gives such a pair rewards with the judged sign (and a gap of at
least ``min_gap``); reward-model pairs are left as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, cast

from flywheel.errors import FlywheelError

JUDGED = ("verifier", "verifier_repair", "llm_judge")
JUDGES = ("reward_model", *JUDGED)
DEFAULT_MIN_JUDGED_GAP = 0.5


def check_min_judged_gap(min_gap: float) -> None:
    if not math.isfinite(min_gap) or min_gap <= 0:
        raise FlywheelError(f"min_judged_gap must be a finite number > 0, got {min_gap}")


def judged_gap(
    reward_chosen: float, reward_rejected: float, judge: str, min_gap: float = DEFAULT_MIN_JUDGED_GAP
) -> tuple[float, float, bool]:
    """Rewards of a preference pair whose gap has the sign its judge decided.

    RPO (Nemotron-4 340B, sec. 3.4.2) trains the implicit reward gap towards ``eta (reward_chosen -
    reward_rejected)``. A pair decided by a verifier or the LLM judge can have reward-model rewards in the
    wrong order (or equal), and RPO would then push the policy towards the rejected response. For those
    judges (``JUDGED``) the rewards become ``(max(hi, lo + min_gap), lo)`` with ``lo <= hi`` the two
    rewards: an inverted pair is swapped (the gap keeps its size) and a gap below ``min_gap`` is widened to
    ``min_gap`` by raising the chosen reward. A ``"reward_model"`` pair is returned as is: the reward model
    picked chosen for its higher reward, so its gap is positive already.

    The default ``min_gap``, 0.5 reward units, equals ``flywheel.judges.metrics.DEFAULT_HARD_GAP``, the gap below
    which a pair counts as hard: a judged pair is a real preference of unknown strength, so RPO is asked
    for the smallest clear gap, about two thirds of a label step of correctness (weight 0.74), the
    heaviest HelpSteer2 attribute.

    Args:
        reward_chosen: reward-model reward of the chosen response.
        reward_rejected: reward-model reward of the rejected response.
        judge: the pair's judge, one of ``JUDGES``.
        min_gap: smallest reward gap of a judged pair, > 0.

    Returns:
        ``(reward_chosen, reward_rejected, adjusted)``; ``adjusted`` says whether either value changed.

    Raises:
        FlywheelError: unknown judge, non-finite reward, or ``min_gap`` not a finite number > 0.
    """
    if judge not in JUDGES:
        raise FlywheelError(f"judged_gap: judge {judge!r} is unknown; expected one of {JUDGES}")
    check_min_judged_gap(min_gap)
    if not (math.isfinite(reward_chosen) and math.isfinite(reward_rejected)):
        raise FlywheelError(f"judged_gap: rewards must be finite, got ({reward_chosen}, {reward_rejected})")
    if judge == "reward_model":
        return reward_chosen, reward_rejected, False
    lo, hi = min(reward_chosen, reward_rejected), max(reward_chosen, reward_rejected)
    chosen = max(hi, lo + min_gap)
    return chosen, lo, (chosen, lo) != (reward_chosen, reward_rejected)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def with_judged_gap(pair: Mapping[str, Any], min_gap: float = DEFAULT_MIN_JUDGED_GAP) -> tuple[dict[str, Any], bool]:
    """A preference row with ``judged_gap`` applied to its rewards.

    A row it changes keeps the reward model's values in ``reward_model_chosen`` / ``reward_model_rejected``
    (values already there are kept). A row without two numeric rewards is returned unchanged.

    Returns:
        ``(row, adjusted)``.
    """
    chosen, rejected = pair.get("reward_chosen"), pair.get("reward_rejected")
    if not (is_number(chosen) and is_number(rejected)):
        return dict(pair), False
    new_chosen, new_rejected, adjusted = judged_gap(
        float(cast(float, chosen)), float(cast(float, rejected)), str(pair.get("judge")), min_gap
    )
    if not adjusted:
        return dict(pair), False
    return {
        **pair,
        "reward_chosen": new_chosen,
        "reward_rejected": new_rejected,
        "reward_model_chosen": pair.get("reward_model_chosen", chosen),
        "reward_model_rejected": pair.get("reward_model_rejected", rejected),
    }, True


def judged_gaps(
    pairs: Iterable[Mapping[str, Any]], min_gap: float = DEFAULT_MIN_JUDGED_GAP
) -> tuple[list[dict[str, Any]], int]:
    """``with_judged_gap`` over preference rows; returns (rows, number adjusted). Applying it twice changes nothing."""
    out, adjusted = [], 0
    for pair in pairs:
        row, changed = with_judged_gap(pair, min_gap)
        out.append(row)
        adjusted += changed
    return out, adjusted
