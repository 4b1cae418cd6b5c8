"""Instruction variants: verified instruction-following data from responses already chosen, nothing generated.

The report's instruction-following prompts attach verifiable instructions to synthetic prompts (Nemotron-4
340B, NVIDIA 2024, sec. 3.2.1). A small generator rarely follows some kinds at all (all capitals, JSON, a
quotation, a fixed end phrase), so those kinds give no verified response, no pair, and nothing to learn from.

Each chosen SFT response to a plain single-turn prompt (no instructions, no known answer, not code) is reused
for ``per_row`` new prompts: the same question followed by one or two instructions drawn from the kinds that
:mod:`flywheel.judges.repair` can satisfy (``two_responses`` too where the prompt has a second answer to join:
``seconds``). The response repaired to follow them (checked again by the
verifiers) is the new prompt's SFT answer, and (repaired, original) -- the original fails the new
instructions -- is a verifier-decided preference pair (judge ``verifier_repair``, rewards with the judged
sign). The words stay the generator's own -- cut short, a forbidden filler word dropped or swapped, a neutral
line (postscript, template fields, the asked keywords listed) added at most; only the form follows the instruction.

With a ``focus`` (:func:`kind_failure_weights`), the repairable kinds are drawn in proportion to how often the
generator failed each of them on the round's own instruction-following prompts, so the variants teach most what
the generator still gets wrong; the held-out suites are never read.

With ``derived`` on, the instructions are drawn from the content kinds too (this many sentences, at least N
words, two responses): their parameters are read off the answer itself
(:mod:`flywheel.judges.backtranslate`), so the answer follows them as it stands. Such a variant is an SFT row;
it makes a pair only when repair had to change the answer for another instruction drawn with it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.judges.backtranslate import DERIVABLE_KINDS, derive, join_two
from flywheel.judges.candidates import with_cut
from flywheel.judges.gaps import judged_gap
from flywheel.judges.repair import FIXABLE_KINDS, attempt_repair
from flywheel.sdg.if_prompts import draw_compatible, if_single_prompt, sample_instructions
from flywheel.sdg.instructions import REGISTRY, verify_all
from flywheel.sdg.quality import is_refusal

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
    derived: bool = False,
    seconds: Mapping[Any, str] | None = None,
    focus: Mapping[str, float] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Counter[str]]:
    """SFT rows and preference pairs for instruction variants of plain prompts (see the module docstring).

    Args:
        sft_rows: chosen SFT rows (``messages``, ``reward``, ``kind``, ``prompt_id``).
        metas: ``prompt_id`` -> the prompt's ``meta``; rows whose prompt carries instructions or an answer are
            left alone.
        per_row: variants tried per eligible row.
        seed: the instructions drawn for a row depend on ``seed`` and its ``prompt_id`` only.
        min_judged_gap: see :func:`flywheel.judges.gaps.judged_gap`.
        max_instructions: most instructions per variant (1 to this many, drawn per variant).
        derived: draw from the kinds read off the answer too (see the module docstring).
        seconds: ``prompt_id`` -> another answer to the same prompt: ``two_responses`` is drawn too for a row
            that has one (the two joined, :func:`flywheel.judges.backtranslate.join_two`); not with ``focus``.
        focus: repairable kind -> drawing weight (:func:`kind_failure_weights`); None draws them uniformly.
            Not used with ``derived``.

    Returns:
        ``(sft, pairs, counts)``: counts of ``rows`` (eligible), ``variants`` kept (SFT rows), ``already_passes``
        (the answer followed the instructions as it stood: no pair; without ``derived``, no row either) and
        ``failed/<reason>`` (repair could not satisfy the drawn instructions) and ``kind/<kind>`` (instructions
        of each kind in the kept variants).
    """
    sft: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for row in sft_rows:
        meta = metas.get(row.get("prompt_id"))
        if per_row <= 0 or not _plain(row, meta):
            continue
        counts["rows"] += 1
        question, source = row["messages"][0]["content"], row["messages"][1]
        answer = source["content"]
        second = None if source.get("cut") else (seconds or {}).get(row["prompt_id"])  # join whole answers only
        rng = random.Random(f"variants:{seed}:{row['prompt_id']}")  # str seeds are stable across processes
        for j in range(per_row):
            n = rng.randint(1, max_instructions)
            if derived:
                instructions = draw_instructions(rng, n, answer, second)
            elif focus:
                instructions = weighted_instructions(rng, n, focus)
            else:
                joinable = bool(second and join_two(answer, second))
                instructions = sample_instructions(rng, n, FIXABLE_KINDS + (("two_responses",) if joinable else ()))
            text, reason = attempt_repair(answer, {"instructions": instructions}, second)
            if text is None:
                counts[f"failed/{reason}"] += 1
                continue
            unchanged = text.strip() == answer.strip()
            if unchanged:
                counts["already_passes"] += 1
                if not derived:
                    continue
            prompt = [{"role": "user", "content": if_single_prompt(question, instructions)}]
            prompt_id = f"{row['prompt_id']}#variant-{j}"
            reward = float(row["reward"]) if isinstance(row.get("reward"), (int, float)) else 0.0
            chosen, rejected, _ = judged_gap(reward, reward, VARIANT_JUDGE, min_judged_gap)
            sft.append(
                {
                    "messages": prompt + [with_cut(source, text)],
                    "reward": row.get("reward"),
                    "kind": "if_variant",
                    "prompt_id": prompt_id,
                }
            )
            counts["variants"] += 1
            counts.update(f"kind/{ins['kind']}" for ins in instructions)
            if unchanged:
                continue
            pairs.append(
                {
                    "prompt": prompt,
                    "chosen": [with_cut(source, text)],
                    "rejected": [dict(source)],
                    "reward_chosen": chosen,
                    "reward_rejected": rejected,
                    "judge": VARIANT_JUDGE,
                    "prompt_id": prompt_id,
                }
            )
    return sft, pairs, counts


def kind_failure_weights(scored: Iterable[Mapping[str, Any]], kinds: Iterable[str] = FIXABLE_KINDS) -> dict[str, float]:
    """How often the generator failed each of ``kinds`` on the round's instruction-following prompts.

    Every judged response whose prompt carries instructions is checked per instruction; a kind's weight is its
    failure rate with one pass and one failure added, ``(fails + 1) / (tries + 2)``, so a kind never asked
    weighs 0.5 and none weighs 0.
    """
    fails: Counter[str] = Counter()
    tries: Counter[str] = Counter()
    for row in scored:
        meta, msgs = row.get("meta"), row.get("messages")
        instructions = meta.get("instructions") if isinstance(meta, Mapping) else None
        if not instructions or not isinstance(msgs, list) or not msgs or not isinstance(msgs[-1], Mapping):
            continue
        text = msgs[-1].get("content")
        if not isinstance(text, str):
            continue
        try:
            _, per_kind = verify_all(text, instructions)
        except FlywheelError:  # a kind this version does not know: no evidence either way
            continue
        for kind, ok in per_kind.items():
            tries[kind] += 1
            fails[kind] += not ok
    return {k: (fails[k] + 1) / (tries[k] + 2) for k in kinds}


def weighted_instructions(rng: random.Random, n: int, weights: Mapping[str, float]) -> list[dict[str, Any]]:
    """Up to ``n`` compatible instructions, the kinds drawn without replacement with probability proportional
    to ``weights`` (each kind keyed by ``u ** (1 / w)``, ``u`` uniform: Efraimidis and Spirakis, 2006)."""
    keys = {k: rng.random() ** (1.0 / w) for k, w in sorted(weights.items()) if w > 0}
    return draw_compatible(sorted(keys, key=keys.__getitem__, reverse=True), n, lambda k: REGISTRY[k].sample(rng))


def draw_instructions(rng: random.Random, n: int, answer: str, second: str | None) -> list[dict[str, Any]]:
    """Up to ``n`` compatible instructions for ``answer``: repairable kinds with drawn parameters, content kinds
    with parameters read off ``answer`` (``two_responses`` only when a ``second`` answer exists)."""
    pool = sorted(set(FIXABLE_KINDS) | set(DERIVABLE_KINDS))
    rng.shuffle(pool)

    def params_for(kind: str) -> dict[str, Any] | None:
        if kind == "two_responses":
            return {} if second and join_two(answer, second) else None
        if kind in FIXABLE_KINDS:
            return REGISTRY[kind].sample(rng)
        return derive(kind, answer, rng)

    return draw_compatible(pool, n, params_for)


def second_answers(
    scored: Iterable[Mapping[str, Any]], sft: Iterable[Mapping[str, Any]], max_drop: float = 0.5
) -> dict[Any, str]:
    """``prompt_id`` -> the highest-reward other answer to the same single-turn prompt as a chosen SFT row, for
    ``two_responses`` variants: a different, whole text (not cut at the token limit), not a refusal, its reward at
    most ``max_drop`` below the chosen row's."""
    chosen = {
        r.get("prompt_id"): (r["messages"][-1]["content"].strip(), r.get("reward"))
        for r in sft
        if isinstance(r.get("messages"), list) and len(r["messages"]) == 2
    }
    best: dict[Any, tuple[float, str]] = {}
    for r in scored:
        pid, msgs, reward = r.get("prompt_id"), r.get("messages"), r.get("reward")
        if pid not in chosen or not isinstance(msgs, list) or len(msgs) != 2:
            continue
        if r.get("finished") is False or (isinstance(msgs[-1], Mapping) and msgs[-1].get("cut")):
            continue  # cut at the token limit: not a whole answer to join
        if isinstance(reward, bool) or not isinstance(reward, (int, float)):
            continue
        text = msgs[-1].get("content") if isinstance(msgs[-1], Mapping) else None
        top_text, top_reward = chosen[pid]
        if not isinstance(text, str) or not text.strip() or text.strip() == top_text or is_refusal(text):
            continue
        if isinstance(top_reward, (int, float)) and float(reward) < float(top_reward) - max_drop:
            continue
        if pid not in best or float(reward) > best[pid][0]:
            best[pid] = (float(reward), text.strip())
    return {pid: text for pid, (_, text) in best.items()}
