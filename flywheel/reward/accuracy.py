"""Reward model evaluation: score both sides of held-out pairs, pairwise accuracy overall and by category.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.1) reports reward-model accuracy on preference pairs split by
category. Here the pairs come from :mod:`flywheel.reward.pairs`; a pair counts as correct when the
weighted reward of the chosen response is strictly higher (``flywheel.judges.metrics``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flywheel.judges.attributes import ATTRIBUTES, WeightsLike, aggregate
from flywheel.judges.metrics import accuracy_by_category

ScoreFn = Callable[[list[list[dict]]], list[list[float]]]


def conversations_of(pairs: Sequence[Mapping[str, Any]]) -> tuple[list[list[dict]], list[tuple[int, int]]]:
    """Distinct conversations to score, and for each pair the indices of its chosen and rejected one."""
    index: dict[str, int] = {}
    convs: list[list[dict]] = []
    refs: list[tuple[int, int]] = []

    def idx(messages: list[dict]) -> int:
        key = json.dumps(messages, sort_keys=True)
        if key not in index:
            index[key] = len(convs)
            convs.append(messages)
        return index[key]

    for p in pairs:
        refs.append((idx(list(p["prompt"]) + list(p["chosen"])), idx(list(p["prompt"]) + list(p["rejected"]))))
    return convs, refs


def score_pairs(
    pairs: Sequence[Mapping[str, Any]], score: ScoreFn, weights: WeightsLike = None
) -> list[dict[str, Any]]:
    """Pairs with ``reward_chosen``/``reward_rejected`` (weighted) and both attribute vectors.

    Args:
        pairs: ``{prompt, chosen, rejected, category, ...}`` rows.
        score: conversations -> raw head outputs ``[N][5]`` (vLLM or transformers scorer).
        weights: attribute weights of the scalar reward.
    """
    convs, refs = conversations_of(pairs)
    raw = score(convs) if convs else []
    rewards = [aggregate(s, weights) for s in raw]
    out = []
    for p, (c, r) in zip(pairs, refs):
        out.append(
            {
                **p,
                "reward_chosen": rewards[c],
                "reward_rejected": rewards[r],
                "scores_chosen": dict(zip(ATTRIBUTES, raw[c])),
                "scores_rejected": dict(zip(ATTRIBUTES, raw[r])),
            }
        )
    return out


def evaluate(
    pairs: Sequence[Mapping[str, Any]], score: ScoreFn, weights: WeightsLike = None
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Accuracy by category as flat metrics (``accuracy/<cat>``, ``pairs/<cat>``, and
    ``accuracy_by_source/<cat>/<source>`` when pairs carry a source) and the scored pairs."""
    scored = score_pairs(pairs, score, weights)
    metrics: dict[str, float] = {}
    for cat, (acc, n) in accuracy_by_category(scored).items():
        metrics[f"accuracy/{cat}"] = acc
        metrics[f"pairs/{cat}"] = n
    # the same accuracy per (category, source) when pairs carry a source, e.g. reasoning/math vs instruction
    groups: dict[str, list[bool]] = {}
    for p in scored:
        if p.get("source"):
            groups.setdefault(f"{p['category']}/{p['source']}", []).append(p["reward_chosen"] > p["reward_rejected"])
    for key, hits in sorted(groups.items()):
        metrics[f"accuracy_by_source/{key}"] = sum(hits) / len(hits)
    return metrics, scored


def accuracy_line(metrics: Mapping[str, float]) -> str:
    """One console line of :func:`evaluate`'s metrics: overall accuracy, then each category with its pairs.

    >>> accuracy_line({"accuracy/all": 0.75, "pairs/all": 4, "accuracy/chat": 1.0, "pairs/chat": 2,
    ...                "accuracy/hard": 0.5, "pairs/hard": 2})
    'pairwise accuracy 0.750 on 4 pairs (chat 1.000 of 2, hard 0.500 of 2)'
    """
    cats = sorted(k.split("/", 1)[1] for k in metrics if k.startswith("accuracy/") and k != "accuracy/all")
    parts = ", ".join(f"{c} {metrics[f'accuracy/{c}']:.3f} of {int(metrics.get(f'pairs/{c}', 0))}" for c in cats)
    head = (
        f"pairwise accuracy {metrics.get('accuracy/all', float('nan')):.3f} on {int(metrics.get('pairs/all', 0))} pairs"
    )
    return f"{head} ({parts})" if parts else head
