"""Held-out preference pairs from HelpSteer2-schema rows, and their evaluation categories.

HelpSteer2 rates responses, not pairs; two responses to the same prompt make a pair when their
ground-truth weighted rewards differ, the higher one being chosen (the same weights the reward model's
scalar reward uses). Categories follow the RewardBench split the Nemotron-4 340B report uses (sec. 3.1):

* ``reasoning``: a verifier knows the answer (math answer or instruction constraints): it accepts the
  chosen response and rejects the other;
* ``hard``: the ground-truth gap is below ``hard_gap``;
* ``chat``: the rest.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.judges.attributes import ATTRIBUTES, WeightsLike
from flywheel.judges.metrics import DEFAULT_HARD_GAP, ground_truth_gap
from flywheel.judges.verifiers import verify
from flywheel.reward.data import row_messages
from flywheel.store import fingerprint


def _attrs(row: Mapping[str, Any]) -> dict[str, Any]:
    source = row["scores"] if isinstance(row.get("scores"), Mapping) else row
    return {a: source.get(a) for a in ATTRIBUTES}


def pair_category(meta: Any, chosen: str, rejected: str, gap: float, hard_gap: float) -> str:
    """``reasoning`` when a verifier accepts ``chosen`` and rejects ``rejected``, else ``hard``/``chat`` by gap."""
    if isinstance(meta, Mapping) and verify(meta, chosen) is True and verify(meta, rejected) is False:
        return "reasoning"
    return "hard" if abs(gap) < hard_gap else "chat"


def helpsteer_pairs(
    rows: Iterable[Mapping[str, Any]], weights: WeightsLike = None, hard_gap: float = DEFAULT_HARD_GAP
) -> list[dict[str, Any]]:
    """Every pair of responses to one prompt whose ground-truth rewards differ.

    Args:
        rows: HelpSteer2-schema rows (``prompt``/``response`` + attributes, optional ``meta`` for verifiers),
            or scored rows (``messages`` + ``scores``).
        weights: attribute weights of the ground-truth reward (default: the model-card weights).
        hard_gap: gap below which a pair is ``hard``.

    Returns:
        Preference rows ``{prompt, chosen, rejected, category, gt_gap, prompt_id, source}`` in input order
        (``source`` is the rows' ``kind`` column when they have one).

    Raises:
        FlywheelError: a malformed row.
    """
    groups: dict[str, list[tuple[list[dict], Mapping[str, Any]]]] = {}
    for n, row in enumerate(rows):
        try:
            messages = row_messages(row)
        except FlywheelError as err:
            raise FlywheelError(f"row {n}: {err}") from None
        key = json.dumps(messages[:-1], sort_keys=True)
        groups.setdefault(key, []).append((messages, row))
    pairs = []
    for key, members in groups.items():
        for (ma, ra), (mb, rb) in itertools.combinations(members, 2):
            gap = ground_truth_gap(_attrs(ra), _attrs(rb), weights)
            if gap is None or gap == 0 or ma[-1]["content"] == mb[-1]["content"]:
                continue
            (mc, rc), (ml, _) = ((ma, ra), (mb, rb)) if gap > 0 else ((mb, rb), (ma, ra))
            pairs.append(
                {
                    "prompt": ma[:-1],
                    "chosen": [mc[-1]],
                    "rejected": [ml[-1]],
                    "category": pair_category(rc.get("meta"), mc[-1]["content"], ml[-1]["content"], gap, hard_gap),
                    "gt_gap": abs(gap),
                    "prompt_id": fingerprint(key),
                    "source": rc.get("kind"),
                }
            )
    return pairs


def preference_pairs(rows: Iterable[Mapping[str, Any]], hard_gap: float = DEFAULT_HARD_GAP) -> list[dict[str, Any]]:
    """Pairs from preference rows (``prompt``/``chosen``/``rejected``), keeping a given ``category``.

    Without one, a pair decided by a verifier is ``reasoning``, one with ``gt_gap`` below ``hard_gap`` is
    ``hard``, the rest ``chat`` (see :func:`flywheel.judges.metrics.categorize`).
    """
    out = []
    for n, row in enumerate(rows):
        if not all(isinstance(row.get(k), list) and row.get(k) for k in ("prompt", "chosen", "rejected")):
            raise FlywheelError(f"preference row {n}: needs non-empty 'prompt', 'chosen', 'rejected' lists")
        category = row.get("category")
        if not category:
            gap = row.get("gt_gap")
            category = (
                "reasoning"
                if row.get("judge") == "verifier"
                else ("hard" if isinstance(gap, (int, float)) and abs(gap) < hard_gap else "chat")
            )
        out.append(
            {
                "prompt": row["prompt"],
                "chosen": row["chosen"][-1:],
                "rejected": row["rejected"][-1:],
                "category": category,
                "gt_gap": row.get("gt_gap"),
                "prompt_id": row.get("prompt_id"),
            }
        )
    return out


def load_pairs(
    rows: Sequence[Mapping[str, Any]], weights: WeightsLike = None, hard_gap: float = DEFAULT_HARD_GAP
) -> list[dict[str, Any]]:
    """Pairs from either file shape: preference rows are used as they are, rated rows are paired."""
    if rows and "chosen" in rows[0]:
        return preference_pairs(rows, hard_gap)
    return helpsteer_pairs(rows, weights, hard_gap)
