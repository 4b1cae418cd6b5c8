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
verifier-guided repair of it (:mod:`flywheel.judges.repair_pairs`; judge ``"verifier_repair"``), and an SFT row
of the repaired response (``repaired: True``) when nothing else of it is kept.

A response cut at the engine's token limit (``finished: False``) is never chosen, kept for SFT or repaired: it
ends mid-sentence, and training on it teaches the model to stop anywhere. It can still be the rejected side.
Where cut responses are let through (``judges.complete_only: false``, :func:`flywheel.judges.candidates.mark_cut`) and wherever one is the
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
from flywheel.judges.candidates import Candidate, candidates, group_by_prompt, reward_of
from flywheel.judges.gaps import DEFAULT_MIN_JUDGED_GAP, check_min_judged_gap, with_judged_gap
from flywheel.judges.repair_pairs import select_repair

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


def _preference(chosen: Candidate, rejected: Candidate, judge: str, prompt_id: Any) -> dict[str, Any]:
    return {
        "prompt": [dict(m) for m in chosen.prompt],
        "chosen": [dict(chosen.answer)],
        "rejected": [dict(rejected.answer)],
        "reward_chosen": chosen.reward,
        "reward_rejected": rejected.reward,
        "judge": judge,
        "prompt_id": prompt_id,
    }


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
