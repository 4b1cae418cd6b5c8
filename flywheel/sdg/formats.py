"""Prompt rows in the layouts public datasets are published in, turned into flywheel prompts.

A prompt is a list of ``{role, content}`` turns ending with a user turn, plus ``meta`` (a known ``answer`` lets
the verifiers judge responses, as the report does with GSM8K- and MATH-style prompts). Layouts:

* ``messages``: ``{"messages": [{"role", "content"}, ...]}`` (OpenAI / TRL conversational);
* ``prompt``: ``{"prompt": "..."}``;
* ``sharegpt``: ``{"conversations": [{"from": "human" | "gpt" | "system", "value": ...}, ...]}``;
* ``lmsys``: ``{"conversation": [{"role", "content"}, ...]}`` (LMSYS-Chat-1M);
* ``alpaca``: ``{"instruction", "input", "output"}``;
* ``gsm8k``: ``{"question", "answer"}``, the answer's last line ``#### N`` is the ground truth;
* ``math``: ``{"problem", "solution"}``, the solution's last ``\\boxed{...}`` is the ground truth.

In the ShareGPT and LMSYS layouts trailing assistant turns (the dataset's own answers) are dropped: the prompt is
everything up to the last user turn. A row that does not fit its layout raises ``ValueError`` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FORMATS = ("messages", "prompt", "sharegpt", "lmsys", "alpaca", "gsm8k", "math")
# what a row must hold for each layout, in the order detection tries them
_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("messages", ("messages",)),
    ("sharegpt", ("conversations",)),
    ("lmsys", ("conversation",)),
    ("alpaca", ("instruction",)),
    ("gsm8k", ("question", "answer")),
    ("math", ("problem", "solution")),
    ("prompt", ("prompt",)),
)
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}
_GSM8K = re.compile(r"####\s*([^\n]+?)\s*$")


def detect(row: Mapping[str, Any]) -> str | None:
    """The first layout whose keys ``row`` holds, or None."""
    for name, keys in _KEYS:
        if all(k in row for k in keys):
            return name
    return None


def gsm8k_answer(answer: str) -> str | None:
    """``N`` of a GSM8K answer's ``#### N`` line (thousands commas removed), or None."""
    m = _GSM8K.search(answer.strip())
    return m.group(1).replace(",", "").strip() if m else None


def boxed_answer(solution: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces balanced), or None."""
    start = solution.rfind("\\boxed")
    if start < 0:
        return None
    i = solution.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[j], 0)
        if depth == 0:
            return solution[i + 1 : j].strip() or None
    return None


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {key!r} must be a non-empty string")
    return value


def _turns(raw: Any, key: str, role_key: str, text_key: str, roles: Mapping[str, str] | None) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"field {key!r} must be a non-empty list of turns")
    out = []
    for n, turn in enumerate(raw):
        if not isinstance(turn, Mapping) or not isinstance(turn.get(text_key), str):
            raise ValueError(f"field {key!r}[{n}] needs a string {text_key!r}")
        role = turn.get(role_key)
        role = roles.get(str(role).lower()) if roles is not None else role
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"field {key!r}[{n}] has an unknown {role_key!r}: {turn.get(role_key)!r}")
        out.append({"role": role, "content": turn[text_key]})
    while out and out[-1]["role"] == "assistant":
        out.pop()
    if not out or out[-1]["role"] != "user":
        raise ValueError(f"field {key!r} has no user turn to answer")
    return out


def to_prompt(row: Mapping[str, Any], fmt: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """``(messages, meta)`` of one row in layout ``fmt`` (see the module docstring).

    Raises:
        ValueError: the row does not fit the layout (the message names the field).
    """
    meta: dict[str, Any] = {}
    if fmt == "messages":  # flywheel's own layout: taken as it is, so it must already end with a user turn
        msgs = row.get("messages")
        if not msgs or not isinstance(msgs, list):
            raise ValueError("'messages' must be a non-empty list of turns")
        for turn in msgs:
            if not (
                isinstance(turn, Mapping) and isinstance(turn.get("role"), str) and isinstance(turn.get("content"), str)
            ):
                raise ValueError(f"each turn of 'messages' needs string 'role' and 'content', got {turn!r:.60}")
        if msgs[-1]["role"] != "user":
            raise ValueError("'messages' must end with a user turn")
        msgs = [{"role": t["role"], "content": t["content"]} for t in msgs]
    elif fmt == "prompt":
        msgs = [{"role": "user", "content": _text(row, "prompt")}]
    elif fmt == "sharegpt":
        msgs = _turns(row.get("conversations"), "conversations", "from", "value", _SHAREGPT_ROLES)
    elif fmt == "lmsys":
        msgs = _turns(row.get("conversation"), "conversation", "role", "content", None)
    elif fmt == "alpaca":
        extra = row.get("input")
        if extra is not None and not isinstance(extra, str):
            raise ValueError("field 'input' must be a string")
        body = _text(row, "instruction") + (f"\n\n{extra.strip()}" if extra and extra.strip() else "")
        msgs = [{"role": "user", "content": body}]
    elif fmt == "gsm8k":
        answer = gsm8k_answer(_text(row, "answer"))
        if answer is None:
            raise ValueError("field 'answer' has no '#### N' final line")
        msgs, meta = [{"role": "user", "content": _text(row, "question")}], {"answer": answer}
    elif fmt == "math":
        answer = boxed_answer(_text(row, "solution"))
        if answer is None:
            raise ValueError("field 'solution' has no \\boxed{...} answer")
        msgs, meta = [{"role": "user", "content": _text(row, "problem")}], {"answer": answer}
    else:
        raise ValueError(f"unknown prompt format {fmt!r}; formats: {', '.join(FORMATS)}")
    return msgs, meta
