"""Prompt rows: the records every synthetic prompt pipeline ends with.

A prompt row is ``{"id", "messages", "kind", "split", "meta", "lineage"}`` (see the record
formats in the project contract); ``messages`` ends with a user turn. The id is a stable hash
of the prompt text, so regenerating the same prompt yields the same id and exact duplicates
collapse across pipelines and rounds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flywheel.errors import FlywheelError

PROMPT_KINDS: tuple[str, ...] = (
    "open_qa",
    "writing",
    "closed_qa",
    "math",
    "code",
    "if_single",
    "if_multi",
    "if_revision",
    "two_turn",
)
SPLITS: tuple[str, ...] = ("train", "heldout")
_ROLES = ("system", "user", "assistant")


def prompt_id(content: str | list[dict[str, str]]) -> str:
    """sha1 hex[:16] of the prompt text.

    A lone user message hashes like its text; longer message lists hash as canonical JSON.
    """
    if isinstance(content, str):
        text = content
    elif len(content) == 1 and content[0].get("role") == "user":
        text = content[0]["content"]
    else:
        text = json.dumps([[m["role"], m["content"]] for m in content], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def split_for(row_id: str, heldout_fraction: float) -> str:
    """Deterministic split from the id: ``"heldout"`` for about ``heldout_fraction`` of ids."""
    if not 0.0 <= heldout_fraction <= 1.0:
        raise FlywheelError(f"split_for: heldout_fraction {heldout_fraction} not in [0, 1]")
    bucket = int(hashlib.sha1(row_id.encode("utf-8")).hexdigest()[:8], 16) / 0x100000000
    return "heldout" if bucket < heldout_fraction else "train"


def _check_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    if not messages:
        raise FlywheelError("make_prompt_row: messages is empty")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise FlywheelError(f"make_prompt_row: bad message {m!r:.80}")
    if messages[-1]["role"] != "user":
        raise FlywheelError("make_prompt_row: messages must end with a user turn")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def make_prompt_row(
    kind: str,
    content: str | list[dict[str, str]],
    meta: dict[str, Any] | None = None,
    split: str = "train",
    lineage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a prompt row.

    Args:
        kind: one of ``PROMPT_KINDS``.
        content: the user prompt text (one user turn) or a full message list ending with a
            user turn (multi-turn kinds).
        meta: free-form details (topic, keyword, instructions to verify, ...); copied.
        split: ``"train"`` or ``"heldout"``.
        lineage: lineage fields; the caller fills round/stage/generator/config_hash.

    Returns:
        ``{"id", "messages", "kind", "split", "meta", "lineage"}``.
    """
    if kind not in PROMPT_KINDS:
        raise FlywheelError(f"make_prompt_row: unknown kind {kind!r}; expected {PROMPT_KINDS}")
    if split not in SPLITS:
        raise FlywheelError(f"make_prompt_row: unknown split {split!r}")
    if isinstance(content, str):
        if not content.strip():
            raise FlywheelError(f"make_prompt_row: empty prompt text for kind {kind!r}")
        messages = [{"role": "user", "content": content}]
        row_id = prompt_id(content)
    else:
        messages = _check_messages(content)
        row_id = prompt_id(messages)
    return {
        "id": row_id,
        "messages": messages,
        "kind": kind,
        "split": split,
        "meta": dict(meta or {}),
        "lineage": dict(lineage or {}),
    }
