"""SFT rows from scored responses and role-played dialogues.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.2.3): SFT data keeps the best response per prompt above a reward
threshold; a verified-wrong response is never kept, a verified-right one ranks first. A prompt whose responses
all fail their verifiers keeps the repaired best one (:func:`flywheel.judges.repair_pairs.select_repair`). The report
filters its synthetic dialogues with the reward model (sec. 3.2.2): :func:`select_dialogues`.

Inputs and outputs follow :mod:`flywheel.judges.select`; malformed rows are skipped and counted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.judges.candidates import candidates, group_by_prompt, reward_of
from flywheel.judges.gaps import is_number
from flywheel.judges.repair_pairs import select_repair
from flywheel.judges.select import SelectionStats


def select_sft(
    rows_for_prompt: Sequence[Mapping[str, Any]],
    threshold: float | None,
    best_only: bool = True,
    use_verifiers: bool = True,
    kind: str = "general",
    dropped: Counter[str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """SFT rows for one prompt: responses with ``reward >= threshold``, best first.

    Verified-False and truncated (``finished: False``) responses are never kept; verified-True ones rank above
    unverified ones, then higher reward first (input order breaks ties).

    Args:
        rows_for_prompt: scored rows sharing one ``prompt_id``.
        threshold: minimum reward; None keeps any reward.
        best_only: keep only the top response.
        use_verifiers: read ``row["verified"]``.
        kind: ``kind`` for rows that carry none.
        dropped: counter receiving why rows were ignored.

    Returns:
        ``(sft rows, None)`` or ``([], reason)`` with reason ``no_valid_response``,
        ``all_verified_false``, ``all_truncated`` or ``below_threshold``.
    """
    dropped = Counter() if dropped is None else dropped
    cands = candidates(rows_for_prompt, use_verifiers, dropped)
    if not cands:
        return [], "no_valid_response"
    eligible = [c for c in cands if c.verified is not False]
    if not eligible:
        return [], "all_verified_false"
    eligible = [c for c in eligible if c.finished]
    if not eligible:
        return [], "all_truncated"
    if threshold is not None:
        eligible = [c for c in eligible if reward_of(c) >= threshold]
        if not eligible:
            return [], "below_threshold"
    ranked = sorted(eligible, key=lambda c: (c.verified is True, c.reward), reverse=True)
    if best_only:
        ranked = ranked[:1]
    return [
        {
            "messages": [dict(m) for m in c.prompt] + [dict(c.answer)],
            "reward": c.reward,
            "kind": c.row.get("kind") or kind,
            "prompt_id": c.row.get("prompt_id"),
        }
        for c in ranked
    ], None


def select_sft_rows(
    rows: Iterable[Mapping[str, Any]],
    threshold: float | None,
    best_only: bool = True,
    use_verifiers: bool = True,
    kind: str = "general",
    repair: bool = True,
) -> tuple[list[dict[str, Any]], SelectionStats]:
    """``select_sft`` over all prompts of a scored dataset.

    With ``repair`` (and ``use_verifiers``), a prompt whose responses all fail their verifiers keeps the
    repaired best response (``select_repair``) when its reward reaches ``threshold``; skipped reasons then
    include ``repaired_below_threshold``.
    """
    stats = SelectionStats()
    out: list[dict[str, Any]] = []
    for group in group_by_prompt(rows, stats.dropped_rows).values():
        stats.seen += 1
        kept, reason = select_sft(group, threshold, best_only, use_verifiers, kind, stats.dropped_rows)
        if reason == "all_verified_false" and repair and use_verifiers:
            _, row, failure = select_repair(group, kind=kind)
            if failure is not None:
                stats.repair_failed[failure] += 1
            elif row is not None and (threshold is None or is_number(row["reward"]) and row["reward"] >= threshold):
                kept, reason = [row], None
                stats.repaired += 1
            elif row is not None:
                reason = "repaired_below_threshold"
        if reason is not None:
            stats.skipped[reason] += 1
        out.extend(kept)
        stats.kept += len(kept)
    return out, stats


def select_dialogues(
    rows: Iterable[Mapping[str, Any]], threshold: float | None, keep_share: float | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Role-played dialogues kept for SFT: those whose whole-dialogue reward is ``>= threshold``.

    The report filters its synthetic dialogues with the reward model. A fixed threshold depends on the
    reward model's scale, so ``keep_share`` (used when ``threshold`` is None) keeps the best-rated share
    instead: the threshold becomes the reward of the ``ceil(keep_share * n)``-th best dialogue (ties kept).

    Returns (kept rows in input order, number dropped). ``threshold=None`` and ``keep_share=None`` keep every
    scored dialogue; a row without a finite reward is always dropped.
    """
    rows = list(rows)
    if threshold is None and keep_share is not None:
        if not 0.0 < keep_share <= 1.0:
            raise FlywheelError(f"select_dialogues: keep_share must be in (0, 1], got {keep_share}")
        finite = sorted(
            (
                float(r["reward"])
                for r in rows
                if isinstance(r.get("reward"), (int, float)) and math.isfinite(r["reward"])
            ),
            reverse=True,
        )
        if finite:
            threshold = finite[max(1, math.ceil(keep_share * len(finite))) - 1]
    kept, dropped = [], 0
    for row in rows:
        r = row.get("reward")
        ok = isinstance(r, (int, float)) and math.isfinite(r) and (threshold is None or r >= threshold)
        if ok:
            kept.append(dict(row))
        else:
            dropped += 1
    return kept, dropped
