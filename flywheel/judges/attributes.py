"""HelpSteer2 attributes and the weighted reward built from them.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.1 "Reward Modeling") trains its reward model to predict five
HelpSteer2 attributes per response and uses their weighted sum as the scalar reward. The default
weights are the ones published with the Nemotron-4-340B-Reward model card:
helpfulness 0.3, correctness 0.74, coherence 0.46, complexity 0.47, verbosity -0.33.

Plain Python only (``aggregate``, ``helpsteer_row_to_target``, ``weight_vector``): configuration, judging
and selection code import it without loading torch. The tensor forms used to train the reward model live
in :mod:`flywheel.reward.losses`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from flywheel.errors import FlywheelError

ATTRIBUTES: tuple[str, ...] = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")

DEFAULT_WEIGHTS: dict[str, float] = {
    "helpfulness": 0.3,
    "correctness": 0.74,
    "coherence": 0.46,
    "complexity": 0.47,
    "verbosity": -0.33,
}

WeightsLike = Mapping[str, float] | Sequence[float] | None


def weight_vector(weights: WeightsLike = None) -> tuple[float, ...]:
    """Weights as a tuple ordered like ``ATTRIBUTES``.

    Args:
        weights: a mapping attribute -> weight naming exactly the five attributes, a sequence of five
            floats in ``ATTRIBUTES`` order, or None for ``DEFAULT_WEIGHTS``.

    Returns:
        Five floats.

    Raises:
        FlywheelError: unknown or missing attribute names, wrong length, non-finite weight.
    """
    if weights is None:
        weights = DEFAULT_WEIGHTS
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(ATTRIBUTES))
        missing = [a for a in ATTRIBUTES if a not in weights]
        if unknown or missing:
            raise FlywheelError(f"reward weights: unknown {unknown}, missing {missing}; expected {list(ATTRIBUTES)}")
        values = [weights[a] for a in ATTRIBUTES]
    else:
        values = list(weights)
        if len(values) != len(ATTRIBUTES):
            raise FlywheelError(f"reward weights: expected {len(ATTRIBUTES)} values, got {len(values)}")
    out = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in out):
        raise FlywheelError(f"reward weights: non-finite value in {out}")
    return out


def aggregate(scores: Mapping[str, float] | Sequence[float], weights: WeightsLike = None) -> float:
    """Scalar reward of one response: ``sum_i w_i * s_i`` over the five attributes.

    Args:
        scores: attribute -> score (extra keys, e.g. further reward-model heads, are ignored), or a
            sequence of five scores in ``ATTRIBUTES`` order.
        weights: see ``weight_vector``; None means the model-card weights.

    Returns:
        The weighted sum.

    Raises:
        FlywheelError: a missing attribute, wrong length, or a non-finite score.
    """
    w = weight_vector(weights)
    if isinstance(scores, Mapping):
        missing = [a for a in ATTRIBUTES if scores.get(a) is None]
        if missing:
            raise FlywheelError(f"reward scores: missing attributes {missing}")
        values = [float(scores[a]) for a in ATTRIBUTES]
    else:
        values = [float(s) for s in scores]
        if len(values) != len(ATTRIBUTES):
            raise FlywheelError(f"reward scores: expected {len(ATTRIBUTES)} values, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise FlywheelError(f"reward scores: non-finite value in {values}")
    return math.fsum(wi * si for wi, si in zip(w, values))


def helpsteer_row_to_target(row: Mapping[str, Any]) -> tuple[list[float], list[bool]]:
    """Regression target and mask for one HelpSteer2-schema row.

    Attributes are read from ``row["scores"]`` when that is a mapping (our scored rows), else from the
    row's top level (HelpSteer2 JSONL: ``{"prompt", "response", "helpfulness", ...}``). A missing,
    None or NaN attribute is masked out.

    Args:
        row: one JSONL record.

    Returns:
        ``(values, mask)``: five floats (0.0 where masked) and five bools, in ``ATTRIBUTES`` order.

    Raises:
        FlywheelError: an attribute holds something that is not a number.
    """
    source = row["scores"] if isinstance(row.get("scores"), Mapping) else row
    values: list[float] = []
    mask: list[bool] = []
    for name in ATTRIBUTES:
        raw = source.get(name)
        if raw is None:
            values.append(0.0)
            mask.append(False)
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise FlywheelError(f"helpsteer row: attribute {name!r} is not a number: {raw!r}")
        value = float(raw)
        present = math.isfinite(value)
        values.append(value if present else 0.0)
        mask.append(present)
    return values, mask
