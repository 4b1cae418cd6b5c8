"""LLM-as-judge pair selection: which response pairs to ask about, and which pairs to keep.

Each pair is asked in both orders (position swap); a pair is kept only when both verdicts agree. The prompt
text and verdict parsing live in :mod:`flywheel.judges.pairwise`; grouping and statistics are shared with
:mod:`flywheel.judges.select`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from flywheel.errors import FlywheelError
from flywheel.judges.candidates import candidates, group_by_prompt
from flywheel.judges.pairwise import combine_both_orders, disagreement_reason, judge_prompt, parse_verdict
from flywheel.judges.select import SelectionStats


def judge_requests(
    rows: Iterable[Mapping[str, Any]], pairs_per_prompt: int = 1, seed: int = 0
) -> tuple[list[dict[str, Any]], SelectionStats]:
    """Pairs of responses for the LLM judge, each with its prompt in both orders.

    Args:
        rows: response rows (rewards optional).
        pairs_per_prompt: distinct response pairs per prompt, drawn at random (seeded per prompt).
        seed: rng seed.

    Returns:
        ``(requests, stats)``; a request holds ``prompt_id``, ``prompt``, ``first``/``second``
        (assistant messages), ``reward_first``/``reward_second`` (None without rewards) and the judge
        chat messages ``messages_ab`` (first shown as A) and ``messages_ba`` (swapped).

    Raises:
        FlywheelError: ``pairs_per_prompt < 1``.
    """
    if pairs_per_prompt < 1:
        raise FlywheelError(f"judge_requests: pairs_per_prompt must be >= 1, got {pairs_per_prompt}")
    stats = SelectionStats()
    requests: list[dict[str, Any]] = []
    for prompt_id, group in group_by_prompt(rows, stats.dropped_rows).items():
        stats.seen += 1
        cands = candidates(group, use_verifiers=False, dropped=stats.dropped_rows, need_reward=False)
        if len(cands) < 2:
            stats.skipped["too_few_responses"] += 1
            continue
        combos = list(itertools.combinations(range(len(cands)), 2))
        picked = random.Random(f"{seed}:{prompt_id}").sample(combos, min(pairs_per_prompt, len(combos)))
        for i, j in sorted(picked):
            first, second = cands[i], cands[j]
            requests.append(
                {
                    "prompt_id": prompt_id,
                    "prompt": first.prompt,
                    "first": first.answer,
                    "second": second.answer,
                    "reward_first": first.reward,
                    "reward_second": second.reward,
                    "messages_ab": judge_prompt(first.prompt, first.answer, second.answer),
                    "messages_ba": judge_prompt(first.prompt, second.answer, first.answer),
                }
            )
            stats.kept += 1
    return requests, stats


def pairwise_select(
    requests: Sequence[Mapping[str, Any]], outputs_ab: Sequence[Any], outputs_ba: Sequence[Any]
) -> tuple[list[dict[str, Any]], SelectionStats]:
    """Preference rows from LLM-judge outputs in both orders (judge ``"llm_judge"``).

    A pair is kept only when both orders pick the same response (``combine_both_orders``).

    Args:
        requests: from ``judge_requests``.
        outputs_ab: judge text for each request's ``messages_ab``.
        outputs_ba: judge text for each request's ``messages_ba``.

    Returns:
        ``(preference rows, stats)``; ``stats.skipped`` counts ``unparsed``, ``tie``, ``position_bias``.

    Raises:
        FlywheelError: the three sequences differ in length.
    """
    if not len(requests) == len(outputs_ab) == len(outputs_ba):
        raise FlywheelError(
            f"pairwise_select: {len(requests)} requests but {len(outputs_ab)} and {len(outputs_ba)} judge outputs"
        )
    stats = SelectionStats()
    pairs: list[dict[str, Any]] = []
    for request, text_ab, text_ba in zip(requests, outputs_ab, outputs_ba):
        stats.seen += 1
        verdict_ab, verdict_ba = parse_verdict(text_ab), parse_verdict(text_ba)
        winner = combine_both_orders(verdict_ab, verdict_ba)
        if winner is None:
            stats.skipped[cast(str, disagreement_reason(verdict_ab, verdict_ba))] += 1  # a reason whenever no winner
            continue
        good, bad = ("first", "second") if winner == "first" else ("second", "first")
        pairs.append(
            {
                "prompt": [dict(m) for m in request["prompt"]],
                "chosen": [dict(request[good])],
                "rejected": [dict(request[bad])],
                "reward_chosen": request.get(f"reward_{good}"),
                "reward_rejected": request.get(f"reward_{bad}"),
                "judge": "llm_judge",
                "prompt_id": request.get("prompt_id"),
            }
        )
        stats.kept += 1
        stats.by_judge["llm_judge"] += 1
    return pairs, stats
