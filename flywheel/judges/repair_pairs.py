"""Repair pairs: when every response to a prompt fails its verifiers, a verifier-guided repair of the best one
(:mod:`flywheel.judges.repair`) is paired with it (judge ``"verifier_repair"``) and kept as an SFT row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from flywheel.judges.candidates import candidates, reward_of, with_cut
from flywheel.judges.gaps import DEFAULT_MIN_JUDGED_GAP, check_min_judged_gap, judged_gap
from flywheel.judges.repair import attempt_repair, other_response
from flywheel.sdg.quality import is_refusal


def select_repair(
    rows_for_prompt: Sequence[Mapping[str, Any]],
    min_judged_gap: float = DEFAULT_MIN_JUDGED_GAP,
    kind: str = "general",
    dropped: Counter[str] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """A preference pair and an SFT row from a repair of the best response, when every response fails.

    Applies only when every usable response of the prompt is verified False. The highest-reward one is
    repaired (``flywheel.judges.repair.attempt_repair``); the pair has the repaired text as chosen and the
    original as rejected (judge ``"verifier_repair"``). The repaired text was never scored, so its reward
    follows ``judged_gap`` from a tie: ``reward_chosen = reward_rejected + min_judged_gap``, with
    ``reward_model_chosen`` None and ``reward_model_rejected`` the original's reward. The SFT row carries
    the original's reward (repair changes the form, not the content) and ``repaired: True``.

    Args:
        rows_for_prompt: scored rows sharing one ``prompt_id``; the verifier input is ``row["meta"]``.
        min_judged_gap: reward gap given to the repaired response, > 0.
        kind: ``kind`` of the SFT row when the row carries none.
        dropped: counter receiving why rows were ignored.

    Returns:
        ``(pair, sft_row, None)`` on success; ``(None, None, reason)`` when the repair fails (reasons of
        ``attempt_repair``, or ``already_passes`` when the response passes its verifiers as it is); and
        ``(None, None, None)`` when the prompt is not one to repair.
    """
    check_min_judged_gap(min_judged_gap)
    dropped = Counter() if dropped is None else dropped
    cands = candidates(rows_for_prompt, True, dropped)
    if not cands or any(c.verified is not False for c in cands):
        return None, None, None
    complete = [c for c in cands if c.finished]
    if not complete:
        return None, None, "truncated"
    ranked = sorted(complete, key=reward_of, reverse=True)
    source = ranked[0]
    meta = source.row.get("meta")
    # two_responses joins two whole answers: neither may be cut short (a kept cut answer carries "cut")
    others = [
        c.answer["content"] for c in ranked[1:] if not c.answer.get("cut") and not is_refusal(c.answer["content"])
    ]
    second = None if source.answer.get("cut") else other_response(source.answer["content"], others)
    text, reason = attempt_repair(source.answer["content"], meta if isinstance(meta, Mapping) else None, second)
    if text is None:
        return None, None, reason
    if text.strip() == source.answer["content"].strip():
        return None, None, "already_passes"
    repaired = with_cut(source.answer, text)
    chosen, rejected, _ = judged_gap(reward_of(source), reward_of(source), "verifier_repair", min_judged_gap)
    prompt_id = source.row.get("prompt_id")
    pair = {
        "prompt": [dict(m) for m in source.prompt],
        "chosen": [dict(repaired)],
        "rejected": [dict(source.answer)],
        "reward_chosen": chosen,
        "reward_rejected": rejected,
        "judge": "verifier_repair",
        "prompt_id": prompt_id,
        "reward_model_chosen": None,
        "reward_model_rejected": source.reward,
    }
    sft_row = {
        "messages": [dict(m) for m in source.prompt] + [dict(repaired)],
        "reward": source.reward,
        "kind": source.row.get("kind") or kind,
        "prompt_id": prompt_id,
        "repaired": True,
    }
    return pair, sft_row, None
