"""Instruction variants: verified instruction-following data from responses already chosen, nothing generated.

The report's instruction-following prompts attach verifiable instructions to synthetic prompts (Nemotron-4
340B, NVIDIA 2024, sec. 3.2.1). A small generator rarely follows some kinds at all (all capitals, JSON, a
quotation, a fixed end phrase), so those kinds give no verified response, no pair, and nothing to learn from.

Each chosen SFT response to a plain single-turn prompt (no instructions, no known answer, not code) is reused
for ``per_row`` new prompts: the same question followed by one or two instructions drawn from the kinds that
:mod:`flywheel.judges.repair` can satisfy. The response repaired to follow them (checked again by the
verifiers) is the new prompt's SFT answer, and (repaired, original) -- the original fails the new
instructions -- is a verifier-decided preference pair (judge ``verifier_repair``, rewards with the judged
sign). The words stay the generator's own; only the form follows the instruction.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from flywheel.judges.gaps import judged_gap
from flywheel.judges.repair import FIXABLE_KINDS, attempt_repair
from flywheel.sdg.if_prompts import if_single_prompt, sample_instructions

VARIANT_JUDGE = "verifier_repair"


def _plain(row: Mapping[str, Any], meta: Mapping[str, Any] | None) -> bool:
    """A single-turn SFT row whose prompt has no verifier of its own and is not code."""
    msgs = row.get("messages")
    return (
        isinstance(msgs, list)
        and len(msgs) == 2
        and [m.get("role") for m in msgs] == ["user", "assistant"]
        and all(isinstance(m.get("content"), str) and m["content"].strip() for m in msgs)
        and row.get("prompt_id") is not None
        and row.get("kind") != "code"
        and not (meta or {}).get("instructions")
        and (meta or {}).get("answer") is None
    )


def instruction_variants(
    sft_rows: Iterable[Mapping[str, Any]],
    metas: Mapping[Any, Mapping[str, Any] | None],
    per_row: int,
    seed: int,
    min_judged_gap: float,
    max_instructions: int = 2,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Counter[str]]:
    """SFT rows and preference pairs for instruction variants of plain prompts (see the module docstring).

    Args:
        sft_rows: chosen SFT rows (``messages``, ``reward``, ``kind``, ``prompt_id``).
        metas: ``prompt_id`` -> the prompt's ``meta``; rows whose prompt carries instructions or an answer are
            left alone.
        per_row: variants tried per eligible row.
        seed: the instructions drawn for a row depend on ``seed`` and its ``prompt_id`` only.
        min_judged_gap: see :func:`flywheel.judges.gaps.judged_gap`.

    Returns:
        ``(sft, pairs, counts)``: counts of ``rows`` (eligible), ``variants`` kept, ``already_passes`` and
        ``failed/<reason>`` (repair could not satisfy the drawn instructions).
    """
    sft: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for row in sft_rows:
        meta = metas.get(row.get("prompt_id"))
        if per_row <= 0 or not _plain(row, meta):
            continue
        counts["rows"] += 1
        question, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        rng = random.Random(f"variants:{seed}:{row['prompt_id']}")  # str seeds are stable across processes
        for j in range(per_row):
            instructions = sample_instructions(rng, rng.randint(1, max_instructions), FIXABLE_KINDS)
            new_meta = {"instructions": instructions}
            text, reason = attempt_repair(answer, new_meta)
            if text is None:
                counts[f"failed/{reason}"] += 1
                continue
            if text.strip() == answer.strip():
                counts["already_passes"] += 1
                continue
            prompt = [{"role": "user", "content": if_single_prompt(question, instructions)}]
            prompt_id = f"{row['prompt_id']}#variant-{j}"
            reward = float(row["reward"]) if isinstance(row.get("reward"), (int, float)) else 0.0
            chosen, rejected, _ = judged_gap(reward, reward, VARIANT_JUDGE, min_judged_gap)
            sft.append(
                {
                    "messages": prompt + [{"role": "assistant", "content": text}],
                    "reward": row.get("reward"),
                    "kind": "if_variant",
                    "prompt_id": prompt_id,
                }
            )
            pairs.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": text}],
                    "rejected": [{"role": "assistant", "content": answer}],
                    "reward_chosen": chosen,
                    "reward_rejected": rejected,
                    "judge": VARIANT_JUDGE,
                    "prompt_id": prompt_id,
                }
            )
            counts["variants"] += 1
    return sft, pairs, counts
