"""Reward model evaluation: pairwise accuracy, overall and by category.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.1) reports reward model accuracy on RewardBench,
split into Chat, Chat-Hard, Safety and Reasoning. The same split applies to our own held-out
preference data: a pair is correct when the reward model scores the chosen response strictly higher
(a tie counts as wrong, so a constant reward model scores 0).

Categories here: an explicit ``category`` column wins; otherwise ``reasoning`` for pairs with a known
answer, ``hard`` for pairs whose ground-truth attributes differ by little, ``chat`` for the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from flywheel.errors import FlywheelError
from flywheel.judges.attributes import ATTRIBUTES, WeightsLike, weight_vector

DEFAULT_HARD_GAP = 0.5


def pairwise_accuracy(pairs: Sequence[tuple[float, float]]) -> float:
    """Share of pairs with ``reward_chosen > reward_rejected``.

    Args:
        pairs: ``(reward_chosen, reward_rejected)`` per pair.

    Returns:
        Accuracy in [0, 1].

    Raises:
        FlywheelError: no pairs, or a non-finite reward.
    """
    if not pairs:
        raise FlywheelError("pairwise_accuracy: no pairs to evaluate")
    correct = 0
    for i, (chosen, rejected) in enumerate(pairs):
        if not (math.isfinite(chosen) and math.isfinite(rejected)):
            raise FlywheelError(f"pairwise_accuracy: pair {i} has a non-finite reward ({chosen}, {rejected})")
        correct += chosen > rejected
    return correct / len(pairs)


def ground_truth_gap(
    attributes_chosen: Mapping[str, Any], attributes_rejected: Mapping[str, Any], weights: WeightsLike = None
) -> float | None:
    """Weighted attribute difference chosen - rejected, over attributes labelled on both sides.

    Returns:
        The gap, or None when no attribute is labelled on both sides.
    """
    w = dict(zip(ATTRIBUTES, weight_vector(weights)))
    shared = [a for a in ATTRIBUTES if attributes_chosen.get(a) is not None and attributes_rejected.get(a) is not None]
    if not shared:
        return None
    return math.fsum(w[a] * (float(attributes_chosen[a]) - float(attributes_rejected[a])) for a in shared)


def categorize(row: Mapping[str, Any], hard_gap: float = DEFAULT_HARD_GAP, weights: WeightsLike = None) -> str:
    """Evaluation category of one preference row.

    Precedence: ``row["category"]``; ``reasoning`` when the pair was decided by a verifier
    (``judge == "verifier"``) or carries a known answer (``answer`` or ``meta.answer``); ``hard`` when
    ``gt_chosen``/``gt_rejected`` (HelpSteer2 attribute dicts) differ by ``|gap| < hard_gap``;
    else ``chat``.
    """
    if row.get("category"):
        return str(row["category"])
    meta = cast(Mapping[str, Any], row.get("meta")) if isinstance(row.get("meta"), Mapping) else {}
    if row.get("judge") == "verifier" or row.get("answer") is not None or meta.get("answer") is not None:
        return "reasoning"
    gt_chosen, gt_rejected = row.get("gt_chosen"), row.get("gt_rejected")
    if isinstance(gt_chosen, Mapping) and isinstance(gt_rejected, Mapping):
        gap = ground_truth_gap(gt_chosen, gt_rejected, weights)
        if gap is not None and abs(gap) < hard_gap:
            return "hard"
    return "chat"


def accuracy_by_category(
    rows: Iterable[Mapping[str, Any]], hard_gap: float = DEFAULT_HARD_GAP, weights: WeightsLike = None
) -> dict[str, tuple[float, int]]:
    """Pairwise accuracy per category, plus ``all``.

    Args:
        rows: preference rows with ``reward_chosen`` and ``reward_rejected`` from the reward model
            under evaluation, and the columns ``categorize`` reads.
        hard_gap: ground-truth gap below which a pair is ``hard``.
        weights: attribute weights of the ground-truth gap (default: the model-card weights).

    Returns:
        ``{category: (accuracy, number of pairs)}`` for each category present, and ``all``.

    Raises:
        FlywheelError: no rows, or a row without numeric rewards.
    """
    buckets: dict[str, list[tuple[float, float]]] = {}
    everything: list[tuple[float, float]] = []
    for i, row in enumerate(rows):
        chosen, rejected = row.get("reward_chosen"), row.get("reward_rejected")
        if not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in (chosen, rejected)):
            raise FlywheelError(f"accuracy_by_category: row {i} lacks numeric reward_chosen/reward_rejected")
        pair = (float(cast(float, chosen)), float(cast(float, rejected)))
        buckets.setdefault(categorize(row, hard_gap, weights), []).append(pair)
        everything.append(pair)
    if not everything:
        raise FlywheelError("accuracy_by_category: no rows to evaluate")
    result = {name: (pairwise_accuracy(pairs), len(pairs)) for name, pairs in sorted(buckets.items())}
    result["all"] = (pairwise_accuracy(everything), len(everything))
    return result
