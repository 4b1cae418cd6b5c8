"""Turning scored responses into preference pairs (SFT rows: :mod:`flywheel.judges.sft_select`).

Nemotron-4 340B (NVIDIA, 2024, sec. 3.2.3): for each prompt several responses are sampled and
judged; ground truth decides where it exists (a verified-correct response is chosen over a
verified-wrong one), otherwise the reward model ranks the responses, or an LLM judge compares
them in both orders (:mod:`flywheel.judges.llm_select`).

Inputs are scored rows (``messages`` = prompt + one assistant turn, ``reward``, ``scores``, optional
``verified``: True/False/None, ``prompt_id``, ``meta``). Outputs are preference rows
``{prompt, chosen, rejected, reward_chosen, reward_rejected, judge, prompt_id}`` and SFT rows
``{messages, reward, kind, prompt_id}``; the caller adds lineage. Malformed rows are skipped and
counted, never raised on.

RPO (sec. 3.4.2) pulls the policy's implicit reward gap towards ``eta (reward_chosen - reward_rejected)``.
Where a verifier or the LLM judge decided the pair, that gap must have the judged sign, so the rewards of
such pairs follow :func:`judged_gap` (the reward model's own values stay in ``reward_model_chosen`` /
``reward_model_rejected`` of every row it changes).

A prompt whose responses all fail their verifiers gets a pair from its best failing response and a
verifier-guided repair of it (:mod:`flywheel.judges.repair`; judge ``"verifier_repair"``), and an SFT row
of the repaired response (``repaired: True``) when nothing else of it is kept.

A response cut at the engine's token limit (``finished: False``) is never chosen, kept for SFT or repaired: it
ends mid-sentence, and training on it teaches the model to stop anywhere. It can still be the rejected side.
Where cut responses are let through (``judges.complete_only: false``, :func:`mark_cut`) and wherever one is the
rejected side, its assistant message carries ``"cut": True``: training learns its words but not an end of turn
after them (:func:`flywheel.train.data.assistant_spans`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from flywheel.errors import FlywheelError
from flywheel.judges.gaps import DEFAULT_MIN_JUDGED_GAP, check_min_judged_gap, judged_gap, with_judged_gap
from flywheel.judges.repair import attempt_repair, other_response
from flywheel.sdg.quality import is_refusal

POLICIES = ("max_min", "max_random", "best_second")
# Judges whose decision is not the reward model's ranking: their pairs' reward gap is set by ``judged_gap``.


@dataclass
class SelectionStats:
    """What a selection pass kept and skipped, for logging.

    Attributes:
        seen: prompts considered (judged requests for ``pairwise_select``).
        kept: output rows produced.
        skipped: prompts (or requests) that produced nothing, by reason.
        dropped_rows: input rows ignored, by reason (no assistant turn, no reward, duplicate, ...).
        by_judge: kept preference rows by judge.
        reward_inverted: verifier pairs whose chosen response has the lower reward-model reward (counted
            on the model's rewards, before ``judged_gap``).
        rpo_sign_adjusted: verifier and LLM-judge pairs whose rewards ``judged_gap`` changed.
        repaired: pairs (or SFT rows) made from a repaired response.
        repair_failed: prompts whose responses all fail their verifiers and whose best one could not be
            repaired, by reason (see ``flywheel.judges.repair.attempt_repair``).
    """

    seen: int = 0
    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    dropped_rows: Counter[str] = field(default_factory=Counter)
    by_judge: Counter[str] = field(default_factory=Counter)
    reward_inverted: int = 0
    rpo_sign_adjusted: int = 0
    repaired: int = 0
    repair_failed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        """Flat ``name -> count`` (``skipped/<reason>``, ``dropped/<reason>``, ``judge/<name>``,
        ``repair_failed/<reason>``)."""
        flat = {
            "seen": self.seen,
            "kept": self.kept,
            "reward_inverted": self.reward_inverted,
            "rpo_sign_adjusted": self.rpo_sign_adjusted,
            "repaired": self.repaired,
        }
        counters = (
            ("skipped", self.skipped),
            ("dropped", self.dropped_rows),
            ("judge", self.by_judge),
            ("repair_failed", self.repair_failed),
        )
        for prefix, counter in counters:
            flat.update({f"{prefix}/{key}": n for key, n in sorted(counter.items())})
        return flat


@dataclass(frozen=True)
class _Candidate:
    prompt: list[dict[str, Any]]
    answer: dict[str, Any]
    reward: float | None
    verified: bool | None
    row: Mapping[str, Any]
    finished: bool = True  # False: cut at the token limit (``row["finished"]``), never chosen


def candidates(
    rows: Iterable[Mapping[str, Any]], use_verifiers: bool, dropped: Counter[str], need_reward: bool = True
) -> list[_Candidate]:
    """Usable, distinct responses of one prompt, in input order."""
    out: list[_Candidate] = []
    seen_texts: set[str] = set()
    for row in rows:
        messages = row.get("messages")
        if not isinstance(messages, list) or len(messages) < 2 or not isinstance(messages[-1], Mapping):
            dropped["no_assistant_turn"] += 1
            continue
        answer = messages[-1]
        if answer.get("role") != "assistant" or not isinstance(answer.get("content"), str):
            dropped["no_assistant_turn"] += 1
            continue
        if not answer["content"].strip():
            dropped["empty_response"] += 1
            continue
        reward = row.get("reward")
        if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
            if need_reward:
                dropped["no_reward"] += 1
                continue
            reward = None
        text = answer["content"].strip()
        if text in seen_texts:
            # Identical texts make a pair with no learning signal.
            dropped["duplicate"] += 1
            continue
        seen_texts.add(text)
        verified = row.get("verified") if use_verifiers and isinstance(row.get("verified"), bool) else None
        prompt = [dict(m) for m in messages[:-1]]
        reward = None if reward is None else float(reward)
        finished = row.get("finished") is not False
        answer = dict(answer) if finished else {**answer, "cut": True}
        out.append(_Candidate(prompt, answer, reward, verified, row, finished))
    return out


def mark_cut(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with a cut response (``finished: False``) counted as complete: ``finished`` is dropped and the
    assistant message carries ``"cut": True`` instead, so selection may keep it and training learns no end of
    turn where the engine stopped it."""
    out = {k: v for k, v in row.items() if k != "finished"}
    messages = row.get("messages")
    if row.get("finished") is False and isinstance(messages, list) and messages and isinstance(messages[-1], Mapping):
        out["messages"] = [*messages[:-1], {**messages[-1], "cut": True}]
    return out


_TAIL = 16  # characters compared by ``with_cut``: case, spaces and commas aside (fixes change those)


def _tail(text: str) -> str:
    return "".join(ch for ch in text.casefold() if not ch.isspace() and ch not in ",，")[-_TAIL:]


def with_cut(source: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The assistant message ``source`` with content ``text`` (a repair of it): still ``"cut"`` when the source
    was and ``text`` ends where it did (case and punctuation aside); a fix that closes the text (a quotation
    mark, an end phrase, a postscript, a JSON wrapper) gives it an end, so the mark is dropped."""
    out = {k: v for k, v in source.items() if k != "cut"}
    out["content"] = text
    if source.get("cut") is True and _tail(text) == _tail(str(source.get("content", ""))):
        out["cut"] = True
    return out


def reward_of(c: _Candidate) -> float:
    """Reward of a candidate built with ``need_reward=True``, which is never None."""
    return cast(float, c.reward)


def _preference(chosen: _Candidate, rejected: _Candidate, judge: str, prompt_id: Any) -> dict[str, Any]:
    return {
        "prompt": [dict(m) for m in chosen.prompt],
        "chosen": [dict(chosen.answer)],
        "rejected": [dict(rejected.answer)],
        "reward_chosen": chosen.reward,
        "reward_rejected": rejected.reward,
        "judge": judge,
        "prompt_id": prompt_id,
    }


def group_by_prompt(
    rows: Iterable[Mapping[str, Any]], dropped: Counter[str] | None = None
) -> dict[Any, list[Mapping[str, Any]]]:
    """Rows grouped by ``prompt_id`` in first-seen order; rows without one are counted in ``dropped``."""
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for row in rows:
        prompt_id = row.get("prompt_id")
        if prompt_id is None:
            if dropped is not None:
                dropped["no_prompt_id"] += 1
            continue
        groups.setdefault(prompt_id, []).append(row)
    return groups


def _check_policy(policy: str, min_gap: float) -> None:
    if policy not in POLICIES:
        raise FlywheelError(f"selection policy {policy!r} is unknown; expected one of {POLICIES}")
    if not math.isfinite(min_gap) or min_gap < 0:
        raise FlywheelError(f"selection min_gap must be a finite number >= 0, got {min_gap}")


def select_pair(
    rows_for_prompt: Sequence[Mapping[str, Any]],
    policy: str = "max_min",
    min_gap: float = 0.0,
    use_verifiers: bool = True,
    seed: int = 0,
    dropped: Counter[str] | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """One preference pair for one prompt.

    Ground truth first: with a verified-True and a verified-False response, chosen is the best-reward
    verified-True one and rejected the lowest-reward verified-False one (judge ``"verifier"``;
    ``min_gap`` does not apply). Otherwise the reward decides (judge ``"reward_model"``): chosen is
    the highest reward among responses not verified False; rejected is picked by ``policy`` among
    the others whose gap is positive and at least ``min_gap``, never a verified-True response
    when chosen is not verified True:

    * ``max_min``: the lowest reward (largest gap);
    * ``best_second``: the highest remaining reward (hardest negative);
    * ``max_random``: a uniformly random one (rng seeded by ``seed`` and the prompt id, so the
      result does not depend on how prompts are sharded).

    Args:
        rows_for_prompt: scored rows sharing one ``prompt_id``.
        policy: one of ``POLICIES``.
        min_gap: smallest reward gap to keep a reward-model pair.
        use_verifiers: read ``row["verified"]``; when False it is ignored.
        seed: seed for ``max_random``.
        dropped: counter receiving why rows were ignored.

    Returns:
        ``(preference row, None)`` or ``(None, reason)`` with reason one of ``too_few_responses``,
        ``all_verified_false``, ``all_truncated``, ``no_rejected_candidate``, ``small_gap``.

    Raises:
        FlywheelError: unknown policy or negative ``min_gap``.
    """
    _check_policy(policy, min_gap)
    dropped = Counter() if dropped is None else dropped
    prompt_id = rows_for_prompt[0].get("prompt_id") if rows_for_prompt else None
    cands = candidates(rows_for_prompt, use_verifiers, dropped)
    if len(cands) < 2:
        return None, "too_few_responses"
    right = [c for c in cands if c.verified is True and c.finished]
    wrong = [c for c in cands if c.verified is False]
    if right and wrong:
        chosen = max(right, key=reward_of)
        rejected = min(wrong, key=reward_of)
        return _preference(chosen, rejected, "verifier", prompt_id), None
    eligible = [c for c in cands if c.verified is not False]
    if not eligible:
        return None, "all_verified_false"
    complete = [c for c in eligible if c.finished]
    if not complete:
        return None, "all_truncated"
    chosen = max(complete, key=reward_of)
    others = [c for c in cands if c is not chosen and (chosen.verified is True or c.verified is not True)]
    if not others:
        return None, "no_rejected_candidate"
    # A zero gap is a tie, never a preference, whatever min_gap says.
    admissible = [
        c for c in others if reward_of(chosen) - reward_of(c) > 0 and reward_of(chosen) - reward_of(c) >= min_gap
    ]
    if not admissible:
        return None, "small_gap"
    if policy == "max_min":
        rejected = min(admissible, key=reward_of)
    elif policy == "best_second":
        rejected = max(admissible, key=reward_of)
    else:
        rejected = random.Random(f"{seed}:{prompt_id}").choice(admissible)
    return _preference(chosen, rejected, "reward_model", prompt_id), None


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


def select_preferences(
    rows: Iterable[Mapping[str, Any]],
    policy: str = "max_min",
    min_gap: float = 0.0,
    use_verifiers: bool = True,
    seed: int = 0,
    min_judged_gap: float = DEFAULT_MIN_JUDGED_GAP,
    repair: bool = True,
) -> tuple[list[dict[str, Any]], SelectionStats]:
    """``select_pair`` over all prompts of a scored dataset, with judged pairs' rewards set by ``judged_gap``.

    Args:
        rows: scored rows.
        policy, min_gap, use_verifiers, seed: as for ``select_pair``.
        min_judged_gap: smallest reward gap of a verifier or LLM-judge pair (``judged_gap``).
        repair: for a prompt whose responses all fail their verifiers, pair a repair of the best one with
            it (``select_repair``); needs ``use_verifiers``.

    Returns:
        ``(preference rows in prompt order, stats)``.

    Raises:
        FlywheelError: as ``select_pair``, or ``min_judged_gap`` not a finite number > 0.
    """
    _check_policy(policy, min_gap)
    check_min_judged_gap(min_judged_gap)
    stats = SelectionStats()
    pairs: list[dict[str, Any]] = []
    for group in group_by_prompt(rows, stats.dropped_rows).values():
        stats.seen += 1
        pair, reason = select_pair(group, policy, min_gap, use_verifiers, seed, stats.dropped_rows)
        if pair is None and repair and use_verifiers:
            pair, _, failure = select_repair(group, min_judged_gap)
            if failure is not None:
                stats.repair_failed[failure] += 1
            stats.repaired += pair is not None
        if pair is None:
            stats.skipped[cast(str, reason)] += 1  # select_pair gives a reason with every None
            continue
        if pair["judge"] == "verifier" and pair["reward_chosen"] < pair["reward_rejected"]:
            stats.reward_inverted += 1
        pair, adjusted = with_judged_gap(pair, min_judged_gap)
        stats.rpo_sign_adjusted += adjusted
        pairs.append(pair)
        stats.kept += 1
        stats.by_judge[pair["judge"]] += 1
    return pairs, stats
