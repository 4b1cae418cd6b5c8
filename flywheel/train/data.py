"""Training data: chat-template tokenization with assistant-only labels, truncation, collation, batching.

Labels are found without relying on ``{% generation %}`` markers in the chat template: the dialogue is
rendered once in full and once per assistant turn as the prefix *before* the turn (with the generation
prompt) and the prefix *through* the turn. The characters between the two are that turn's output (its
content plus the template's end-of-turn text, e.g. ``<|im_end|>``); the full text is tokenized once, and a
token is a label when its character offset starts inside such a span. An assistant message cut at the engine's
token limit (``"cut": True``) is labelled through its content only: no end of turn is learned where it stopped. Any template whose renderings of
prefixes are prefixes of the full text works; one that rewrites earlier turns is refused by name.

Rows follow the records contract: SFT ``{"messages": [...]}``, preference ``{"prompt": [...], "chosen":
[assistant], "rejected": [assistant], "reward_chosen", "reward_rejected"}``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch

from flywheel.errors import FlywheelError
from flywheel.readers import read_rows
from flywheel.train.losses import IGNORE_INDEX

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MIN_PROMPT_TOKENS = 8  # left-truncation keeps at least this many prompt tokens (the assistant header)


@dataclass
class Encoded:
    """One tokenized dialogue: ``input_ids`` and ``labels`` (``-100`` outside trained turns), same length.

    ``response_start`` is the index of the first token of the last assistant turn; tokens before it are
    the "prompt" for truncation purposes.
    """

    input_ids: list[int]
    labels: list[int]
    response_start: int


@dataclass
class PairExample:
    """A tokenized preference pair; ``index`` is its row number in the dataset (keys reference log-probs)."""

    chosen: Encoded
    rejected: Encoded
    reward_chosen: float
    reward_rejected: float
    index: int


def _render(tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]], generation_prompt: bool) -> str:
    # tokenize=False renders text; the stubs type the conversation as string-valued messages only
    conversation = cast("list[dict[str, str]]", list(messages))
    return cast(
        str, tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=generation_prompt)
    )


def assistant_spans(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]], last_only: bool
) -> tuple[str, list[tuple[int, int]]]:
    """Render ``messages`` and return ``(text, [(start_char, end_char), ...])`` of the trained assistant turns.

    Raises:
        FlywheelError: the template rewrites earlier turns when later ones are added, or the dialogue opens
            with an assistant turn.
    """
    text = _render(tokenizer, messages, generation_prompt=False)
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if last_only:
        turns = turns[-1:]
    spans = []
    for i in turns:
        if i == 0:
            raise FlywheelError("dialogue starts with an assistant turn (nothing to condition on)")
        before = _render(tokenizer, messages[:i], generation_prompt=True)
        through = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not (through.startswith(before) and text.startswith(through)):
            name = getattr(tokenizer, "name_or_path", "tokenizer")
            raise FlywheelError(f"{name}: chat template is not prefix-stable; cannot locate assistant turn {i}")
        spans.append((len(before), _end_of(text, messages[i], len(before), len(through))))
    return text, spans


def _end_of(text: str, message: dict[str, Any], start: int, end: int) -> int:
    """Where a turn's trained characters end: after the template's end-of-turn text, or, for a message cut at
    the engine's token limit (``"cut": True``), right after its content -- it was stopped there, it did not end."""
    if message.get("cut") is not True:
        return end
    body = message["content"].rstrip()
    at = text.find(body, start, end) if body else -1
    return end if at < 0 else at + len(body)


def encode_dialogue(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[dict[str, Any]], last_only: bool = False
) -> Encoded:
    """Tokenize a dialogue with its chat template; label the assistant turns (or only the last one).

    Args:
        tokenizer: a Hugging Face tokenizer with a chat template. Fast tokenizers are labelled by character
            offsets; slow ones by the token counts of the rendered prefixes.
        messages: ``[{"role", "content"}, ...]`` containing at least one assistant turn.
        last_only: label only the final assistant turn (preference responses); else every assistant turn (SFT).
    """
    text, spans = assistant_spans(tokenizer, messages, last_only)
    if not spans:
        raise FlywheelError("dialogue has no assistant turn to train on")
    last = spans[-1][0]
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        starts = [s for s, _ in enc["offset_mapping"]]
        trained = [any(a <= s < b for a, b in spans) for s in starts]
        response_start = next((k for k, s in enumerate(starts) if s >= last), len(ids))
    else:
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        trained = [False] * len(ids)
        for a, b in spans:
            lo = len(tokenizer(text[:a], add_special_tokens=False)["input_ids"])
            hi = len(tokenizer(text[:b], add_special_tokens=False)["input_ids"])
            trained[lo:hi] = [True] * (hi - lo)
        response_start = len(tokenizer(text[:last], add_special_tokens=False)["input_ids"])
    labels = [t if keep else IGNORE_INDEX for t, keep in zip(ids, trained, strict=True)]
    return Encoded(ids, labels, response_start)


def fit_lengths(prompt_len: int, response_len: int, max_len: int) -> tuple[int, int]:
    """How many prompt tokens (kept from the right) and response tokens (kept from the left) fit ``max_len``.

    The response is kept whole when it fits beside ``MIN_PROMPT_TOKENS`` prompt tokens; otherwise it is cut
    on the right so that many prompt tokens remain.
    """
    if prompt_len + response_len <= max_len:
        return prompt_len, response_len
    keep_prompt = min(prompt_len, max(MIN_PROMPT_TOKENS, max_len - response_len))
    return keep_prompt, min(response_len, max_len - keep_prompt)


def _cut(enc: Encoded, keep_prompt: int, keep_response: int) -> Encoded:
    p0 = enc.response_start - keep_prompt
    end = enc.response_start + keep_response
    return Encoded(enc.input_ids[p0:end], enc.labels[p0:end], keep_prompt)


def truncate(enc: Encoded, max_len: int, policy: str) -> Encoded:
    """Apply the truncation ``policy`` (``left_prompt`` or ``right``, see :class:`StageConfig`)."""
    if len(enc.input_ids) <= max_len:
        return enc
    if policy == "right":
        return Encoded(enc.input_ids[:max_len], enc.labels[:max_len], min(enc.response_start, max_len))
    if policy == "left_prompt":
        keep_p, keep_r = fit_lengths(enc.response_start, len(enc.input_ids) - enc.response_start, max_len)
        return _cut(enc, keep_p, keep_r)
    raise FlywheelError(f"truncation: unknown policy {policy!r} (left_prompt | right)")


def truncate_pair(chosen: Encoded, rejected: Encoded, max_len: int, policy: str) -> tuple[Encoded, Encoded]:
    """Truncate both sides of a pair; ``left_prompt`` keeps the same prompt tokens on both sides."""
    if policy != "left_prompt":
        return truncate(chosen, max_len, policy), truncate(rejected, max_len, policy)
    rc = len(chosen.input_ids) - chosen.response_start
    rl = len(rejected.input_ids) - rejected.response_start
    keep_p, _ = fit_lengths(chosen.response_start, max(rc, rl), max_len)
    return _cut(chosen, keep_p, min(rc, max_len - keep_p)), _cut(rejected, keep_p, min(rl, max_len - keep_p))


def _check_messages(messages: object, where: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise FlywheelError(f"{where}: 'messages' must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise FlywheelError(f"{where}: message without a valid role: {str(m)[:80]}")
        if not isinstance(m.get("content"), str):
            raise FlywheelError(f"{where}: message content must be a string")


def load_rows(paths: Iterable[str]) -> list[dict[str, Any]]:
    """Read the rows of every path (JSONL or Parquet, by suffix), in order."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        rows.extend(read_rows(path))
    return rows


def sft_examples(
    tokenizer: PreTrainedTokenizerBase, rows: Sequence[dict[str, Any]], max_len: int, truncation: str
) -> tuple[list[Encoded], int]:
    """Tokenize SFT rows (every assistant turn labelled). Returns ``(examples, skipped)``.

    Rows left with no label token after truncation are skipped and counted.
    """
    out, skipped = [], 0
    for n, row in enumerate(rows):
        _check_messages(row.get("messages"), f"sft row {n}")
        enc = truncate(encode_dialogue(tokenizer, row["messages"]), max_len, truncation)
        if all(t == IGNORE_INDEX for t in enc.labels[1:]):
            skipped += 1
            continue
        out.append(enc)
    return out, skipped


def pair_examples(
    tokenizer: PreTrainedTokenizerBase, rows: Sequence[dict[str, Any]], max_len: int, truncation: str
) -> list[PairExample]:
    """Tokenize preference rows; only the final (chosen / rejected) assistant turn is labelled."""
    out = []
    for n, row in enumerate(rows):
        where = f"preference row {n}"
        for key in ("prompt", "chosen", "rejected"):
            _check_messages(row.get(key), f"{where} {key!r}")
        for key in ("chosen", "rejected"):
            if row[key][-1]["role"] != "assistant":
                raise FlywheelError(f"{where}: {key!r} must end with an assistant message")
        try:
            rewards = float(row.get("reward_chosen", 0.0)), float(row.get("reward_rejected", 0.0))
        except (TypeError, ValueError):
            raise FlywheelError(f"{where}: reward_chosen / reward_rejected must be numbers") from None
        c = encode_dialogue(tokenizer, row["prompt"] + row["chosen"], last_only=True)
        r = encode_dialogue(tokenizer, row["prompt"] + row["rejected"], last_only=True)
        c, r = truncate_pair(c, r, max_len, truncation)
        out.append(PairExample(c, r, rewards[0], rewards[1], n))
    return out


def mix_sft(
    general: Sequence[dict[str, Any]], code: Sequence[dict[str, Any]], code_replay: float, seed: int
) -> list[dict[str, Any]]:
    """General SFT rows plus a seeded ``code_replay`` share of the code rows, shuffled together.

    ``round(code_replay * len(code))`` code rows are drawn, at least one when the share is positive and
    code rows exist, so the replay never silently vanishes on small data.
    """
    rng = random.Random(seed)
    k = round(code_replay * len(code))
    if code_replay > 0 and code and k == 0:
        k = 1
    mixed = list(general) + rng.sample(list(code), k)
    rng.shuffle(mixed)
    return mixed


def _pad(seqs: Sequence[list[int]], value: int, width: int) -> torch.Tensor:
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def collate_sft(examples: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: ``input_ids``, ``attention_mask``, ``labels``, each ``[B, T]``."""
    width = max(len(e.input_ids) for e in examples)
    return {
        "input_ids": _pad([e.input_ids for e in examples], pad_id, width),
        "attention_mask": _pad([[1] * len(e.input_ids) for e in examples], 0, width),
        "labels": _pad([e.labels for e in examples], IGNORE_INDEX, width),
    }


def collate_pairs(examples: Sequence[PairExample], pad_id: int) -> dict[str, torch.Tensor]:
    """One batch for both sides: rows ``[0, B)`` chosen, ``[B, 2B)`` rejected, padded to a common width.

    Returns ``input_ids``/``attention_mask``/``labels`` ``[2B, T]`` and ``reward_chosen``/``reward_rejected``/
    ``index`` ``[B]``.
    """
    batch = collate_sft([e.chosen for e in examples] + [e.rejected for e in examples], pad_id)
    batch["reward_chosen"] = torch.tensor([e.reward_chosen for e in examples], dtype=torch.float32)
    batch["reward_rejected"] = torch.tensor([e.reward_rejected for e in examples], dtype=torch.float32)
    batch["index"] = torch.tensor([e.index for e in examples], dtype=torch.long)
    return batch


def example_length(example: Encoded | PairExample) -> int:
    if isinstance(example, PairExample):
        return max(len(example.chosen.input_ids), len(example.rejected.input_ids))
    return len(example.input_ids)


def bucket_batches(lengths: Sequence[int], batch_size: int, seed: int, window: int = 32) -> list[list[int]]:
    """Seeded batches of indices whose lengths are alike, to waste little compute on padding.

    Indices are shuffled, cut into windows of ``window * batch_size``, sorted by length inside each window,
    cut into batches, and the batch order is shuffled again, so batches stay random across the dataset
    while each holds similar lengths. The last batch may be short.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = max(1, window) * batch_size
    batches: list[list[int]] = []
    for w in range(0, len(order), span):
        chunk = sorted(order[w : w + span], key=lambda i: lengths[i], reverse=True)
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def shard_batches(batches: Sequence[list[int]], rank: int, world: int) -> list[list[int]]:
    """The batches rank ``rank`` of ``world`` runs: every rank gets the same count (collectives need it).

    Micro-step ``s`` of rank ``r`` is global batch ``s * world + r``; when the count does not divide, the
    first batches are reused to fill the last step.
    """
    if not batches:
        return []
    n = -(-len(batches) // world) * world
    padded = [batches[i % len(batches)] for i in range(n)]
    return padded[rank::world]
