"""Reward-model data: HelpSteer2-schema rows -> chat-template token ids + 5 regression targets and a mask.

HelpSteer2 (Wang et al., 2024, arXiv:2406.08673) rows are ``{"prompt": str, "response": str, "helpfulness",
"correctness", "coherence", "complexity", "verbosity"}`` with scores 0-4; a multi-turn prompt holds earlier
turns separated by ``<extra_id_1>User`` / ``<extra_id_1>Assistant`` lines. Our own scored rows
(``{"messages": [... assistant], "scores": {...}}``) and rows with a ``messages`` list prompt are accepted too.

The text a reward model reads is the chat template over the whole conversation, exactly as the scorers
(:func:`flywheel.engines.vllm_engine.format_conversation`) render it, so training and scoring agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from flywheel.errors import FlywheelError
from flywheel.judges.attributes import ATTRIBUTES, helpsteer_row_to_target

_TURN = re.compile(r"\n?<extra_id_1>(User|Assistant)\n")


@dataclass
class RewardExample:
    """One tokenized response: ``input_ids`` (prompt + response), ``target``/``mask`` over ``ATTRIBUTES``."""

    input_ids: list[int]
    target: list[float]
    mask: list[bool]


def parse_prompt(prompt: Any) -> list[dict[str, str]]:
    """Prompt messages of a HelpSteer2 row.

    Args:
        prompt: a string (single user turn, or HelpSteer2 multi-turn text with ``<extra_id_1>`` markers),
            or a list of ``{"role", "content"}`` messages ending with a user turn.

    Returns:
        Messages alternating user/assistant, ending with a user turn.

    Raises:
        FlywheelError: an empty prompt, or turns that do not end with the user.
    """
    if isinstance(prompt, list):
        messages = [dict(m) for m in prompt]
    elif isinstance(prompt, str) and prompt.strip():
        parts = _TURN.split(prompt)
        # parts = [first user text, role, text, role, text, ...]
        messages = [{"role": "user", "content": parts[0].strip()}]
        for role, text in zip(parts[1::2], parts[2::2]):
            messages.append({"role": role.lower(), "content": text.strip()})
    else:
        raise FlywheelError(f"reward row: 'prompt' must be a non-empty string or a message list, got {prompt!r:.60}")
    if not messages or messages[-1].get("role") != "user":
        raise FlywheelError("reward row: the prompt must end with a user turn")
    for m in messages:
        if m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
            raise FlywheelError(f"reward row: bad prompt message {m!r:.80}")
    return messages


def row_messages(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """The whole conversation of a reward row: prompt messages + the assistant response.

    Raises:
        FlywheelError: neither ``prompt``+``response`` nor ``messages`` ending with an assistant turn.
    """
    if "response" in row:
        if not isinstance(row["response"], str):
            raise FlywheelError("reward row: 'response' must be a string")
        return parse_prompt(row.get("prompt")) + [{"role": "assistant", "content": row["response"]}]
    messages = row.get("messages")
    if (
        isinstance(messages, list)
        and messages
        and isinstance(messages[-1], Mapping)
        and messages[-1].get("role") == "assistant"
    ):
        return parse_prompt(list(messages[:-1])) + [dict(messages[-1])]
    raise FlywheelError(
        "reward row: needs 'prompt' and 'response' (HelpSteer2) or 'messages' ending with an assistant turn"
    )


def render(tokenizer, messages: Sequence[Mapping[str, str]]) -> str:
    """Chat-template text of a full conversation (no generation prompt): what the reward model reads."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=False)


def encode(tokenizer, messages: Sequence[Mapping[str, str]], max_len: int) -> list[int]:
    """Token ids of the rendered conversation, keeping the last ``max_len`` (the response end is pooled).

    Tokenized like a text prompt given to vLLM (the tokenizer's default special-token handling).
    """
    ids = list(tokenizer(render(tokenizer, messages))["input_ids"])
    return ids[-max_len:]


def reward_examples(
    tokenizer, rows: Sequence[Mapping[str, Any]], max_len: int, pad_id: int | None = None
) -> tuple[list[RewardExample], int]:
    """Tokenize reward rows. Returns ``(examples, skipped)``; rows with no labelled attribute are skipped.

    Args:
        pad_id: when given, a sequence ending with it is refused: sequence-classification models pool the
            rightmost non-pad token, so such a sequence would be scored on the wrong token.

    Raises:
        FlywheelError: a malformed row (named by its number), or a rendering that ends with ``pad_id``.
    """
    out, skipped = [], 0
    for n, row in enumerate(rows):
        try:
            target, mask = helpsteer_row_to_target(row)
            messages = row_messages(row)
        except FlywheelError as err:
            raise FlywheelError(f"reward row {n}: {err}") from None
        if not any(mask):
            skipped += 1
            continue
        ids = encode(tokenizer, messages, max_len)
        if pad_id is not None and ids and ids[-1] == pad_id:
            raise FlywheelError(f"reward row {n}: the chat template ends with the pad token; set a distinct pad token")
        out.append(RewardExample(ids, target, mask))
    return out, skipped


def collate_reward(examples: Sequence[RewardExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: ``input_ids``/``attention_mask`` ``[B, T]``, ``target`` ``[B, 5]`` float,
    ``mask`` ``[B, 5]`` bool."""
    width = max(len(e.input_ids) for e in examples)
    return {
        "input_ids": torch.tensor(
            [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in examples], dtype=torch.long
        ),
        "attention_mask": torch.tensor(
            [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in examples], dtype=torch.long
        ),
        "target": torch.tensor([e.target for e in examples], dtype=torch.float32).reshape(-1, len(ATTRIBUTES)),
        "mask": torch.tensor([e.mask for e in examples], dtype=torch.bool).reshape(-1, len(ATTRIBUTES)),
    }
