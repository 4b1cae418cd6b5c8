"""One prompt's judged responses as candidates for selection: usable, distinct, with their reward, verdict and
whether the engine cut them at its token limit (``finished: False``; see :mod:`flywheel.judges.select`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast


@dataclass(frozen=True)
class Candidate:
    prompt: list[dict[str, Any]]
    answer: dict[str, Any]
    reward: float | None
    verified: bool | None
    row: Mapping[str, Any]
    finished: bool = True  # False: cut at the token limit (``row["finished"]``), never chosen


def candidates(
    rows: Iterable[Mapping[str, Any]], use_verifiers: bool, dropped: Counter[str], need_reward: bool = True
) -> list[Candidate]:
    """Usable, distinct responses of one prompt, in input order."""
    out: list[Candidate] = []
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
        out.append(Candidate(prompt, answer, reward, verified, row, finished))
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


def reward_of(c: Candidate) -> float:
    """Reward of a candidate built with ``need_reward=True``, which is never None."""
    return cast(float, c.reward)


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
