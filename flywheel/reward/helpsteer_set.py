"""The shipped HelpSteer2-format reward set, built deterministically by code.

HelpSteer2 (Wang et al., 2024, arXiv:2406.08673) rates each response 0-4 on helpfulness, correctness,
coherence, complexity and verbosity; Nemotron-4 340B (NVIDIA, 2024, sec. 3.1) trains its reward model on
it. That dataset cannot be fetched here, so this module writes a small set in the same schema whose
attributes are true by construction:

* ``math``: arithmetic, percent and ratio word problems with a known answer. Correct responses are concise
  or padded (verbosity); wrong ones slip on the final line, miscalculate, or use the wrong operation
  (correctness 0). Some prompts are two-turn (a solved problem, then a new one).
* ``instruction``: questions from :mod:`flywheel.reward.bank` with one verifiable instruction from
  :mod:`flywheel.sdg.instructions`; one response follows it and one does not, as ``verify_all`` confirms.
* ``chat``: the same questions answered well, with mild or heavy padding, cut off mid-way, or with the
  words of each sentence scrambled (coherence).

Rows: ``{"prompt", "response", <5 attributes>, "kind", "meta"}``; multi-turn prompts use HelpSteer2's
``<extra_id_1>`` turn markers, ``meta`` carries ``answer`` or ``instructions`` for the verifiers. The split
is by prompt: ``helpsteer_train.jsonl`` and ``helpsteer_heldout.jsonl`` (like HelpSteer2's train and
validation files). Rebuild with ``python -m flywheel.reward.helpsteer_set [OUT_DIR]``.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from typing import Any

from flywheel.judges.verifiers import verify_math
from flywheel.reward.bank import FILLER_CLOSERS, FILLER_OPENERS, QA_BANK
from flywheel.sdg.if_prompts import if_single_prompt
from flywheel.sdg.instructions import END_PHRASES, KEYWORD_POOL, START_PHRASES, make_instruction, verify_all

SEED = 20240614
TURN_USER = "\n<extra_id_1>User\n"
TURN_ASSISTANT = "\n<extra_id_1>Assistant\n"
HELDOUT_MATH_SHARE = 0.2
HELDOUT_BANK_ITEMS = 6  # the last bank questions appear only in the held-out file

NAMES = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena")
ITEMS = ("apple", "marble", "sticker", "book", "pencil", "card", "shell", "coin", "stamp", "cookie")

Row = dict[str, Any]
Attrs = tuple[int, int, int, int, int]  # helpfulness, correctness, coherence, complexity, verbosity
ATTR_NAMES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def _row(prompt: str, response: str, attrs: Attrs, kind: str, meta: dict[str, Any]) -> Row:
    return {"prompt": prompt, "response": response, **dict(zip(ATTR_NAMES, attrs)), "kind": kind, "meta": meta}


# ---- math ----------------------------------------------------------------------------------------


def math_problem(rng: random.Random) -> dict[str, Any]:
    """One word problem: ``{"question", "work", "answer", "wrong_op_work", "wrong_op_answer"}``.

    ``work`` is the one-line computation of the answer; ``wrong_op_*`` the same numbers combined with a
    plausible but wrong operation.
    """
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    kind = rng.choice(("add", "sub", "mul", "div", "percent", "ratio"))
    if kind == "add":
        a, b = rng.randint(12, 89), rng.randint(11, 78)
        q = f"{name} has {a} {item}s and gets {b} more. How many {item}s does {name} have now?"
        return dict(
            question=q,
            work=f"{a} + {b} = {a + b}",
            answer=a + b,
            wrong_op_work=f"{a} - {b} = {a - b}",
            wrong_op_answer=a - b,
        )
    if kind == "sub":
        a, b = rng.randint(40, 99), rng.randint(11, 39)
        q = f"{name} had {a} {item}s and gave {b} of them away. How many {item}s are left?"
        return dict(
            question=q,
            work=f"{a} - {b} = {a - b}",
            answer=a - b,
            wrong_op_work=f"{a} + {b} = {a + b}",
            wrong_op_answer=a + b,
        )
    if kind == "mul":
        a, b = rng.randint(3, 12), rng.randint(4, 15)
        q = f"A bag holds {a} {item}s. How many {item}s are in {b} bags?"
        return dict(
            question=q,
            work=f"{a} × {b} = {a * b}",
            answer=a * b,
            wrong_op_work=f"{a} + {b} = {a + b}",
            wrong_op_answer=a + b,
        )
    if kind == "div":
        a, b = rng.randint(3, 12), rng.randint(2, 9)
        q = f"{name} shares {a * b} {item}s equally among {b} friends. How many {item}s does each friend get?"
        return dict(
            question=q,
            work=f"{a * b} ÷ {b} = {a}",
            answer=a,
            wrong_op_work=f"{a * b} - {b} = {a * b - b}",
            wrong_op_answer=a * b - b,
        )
    if kind == "percent":
        price, pct = 20 * rng.randint(2, 15), rng.choice((10, 20, 25, 50))
        save = price * pct // 100
        q = f"A coat costs ${price} and is on sale for {pct}% off. How many dollars does the discount save?"
        return dict(
            question=q,
            work=f"{pct}% of {price} = {price} × {pct} / 100 = {save}",
            answer=save,
            wrong_op_work=f"{price} - {pct} = {price - pct}",
            wrong_op_answer=price - pct,
        )
    r1, r2, k = rng.randint(2, 5), rng.randint(2, 7), rng.randint(2, 9)
    while r2 == r1:
        r2 = rng.randint(2, 7)
    q = f"The ratio of cats to dogs at a shelter is {r1}:{r2}. There are {r1 * k} cats. How many dogs are there?"
    return dict(
        question=q,
        work=f"{r1 * k} ÷ {r1} = {k} groups, and {k} × {r2} = {r2 * k}",
        answer=r2 * k,
        wrong_op_work=f"{r1 * k} × {r2} ÷ {r2} = {r1 * k}",
        wrong_op_answer=r1 * k,
    )


def _wrong_number(rng: random.Random, answer: int) -> int:
    # Off by a small amount that changes the last digit, like a carrying slip.
    return answer + rng.choice((-3, -2, -1, 1, 2, 3, 11, -11))


def math_responses(rng: random.Random, p: dict[str, Any]) -> list[tuple[str, Attrs]]:
    """Candidate responses with their attributes: two correct styles and three kinds of wrong answer."""
    ans, work = p["answer"], p["work"]
    opener, closer = rng.choice(FILLER_OPENERS), rng.choice(FILLER_CLOSERS)
    slip = _wrong_number(rng, ans)
    bad = _wrong_number(rng, ans)
    bad_work = work.rsplit("= ", 1)[0] + f"= {bad}"
    return [
        (f"{work}.\nThe answer is {ans}.", (4, 4, 4, 1, 1)),
        (
            f"{opener} We need to work out the result from the numbers in the question. {work}. "
            f"So, after checking this calculation again, the answer is {ans}. {closer}",
            (3, 4, 4, 1, 4),
        ),
        (f"{work}.\nThe answer is {slip}.", (0, 0, 1, 1, 1)),
        (f"{bad_work}.\nThe answer is {bad}.", (1, 0, 3, 1, 1)),
        (f"{p['wrong_op_work']}.\nThe answer is {p['wrong_op_answer']}.", (1, 0, 2, 1, 1)),
    ]


def math_rows(rng: random.Random, n_prompts: int) -> list[list[Row]]:
    """``n_prompts`` groups of 3 rows: one correct, one wrong, one more of either; ~1 in 8 prompts two-turn."""
    groups: list[list[Row]] = []
    seen: set[str] = set()
    while len(groups) < n_prompts:
        p = math_problem(rng)
        prompt = p["question"]
        if rng.random() < 0.125:
            first = math_problem(rng)
            prompt = f"{first['question']}{TURN_ASSISTANT}{first['work']}.\nThe answer is {first['answer']}.{TURN_USER}{prompt}"
        if prompt in seen:
            continue
        seen.add(prompt)
        cands = math_responses(rng, p)
        # a wrong method can land on the right number (50% off 100 = 100 - 50): not a wrong answer then
        cands = cands[:2] + [c for c in cands[2:] if verify_math(c[0], str(p["answer"])) is False]
        picked = [rng.choice(cands[:2]), rng.choice(cands[2:])]
        rest = [c for c in cands if c not in picked]
        picked.append(rng.choice(rest))
        rng.shuffle(picked)
        meta = {"answer": str(p["answer"])}
        groups.append([_row(prompt, text, attrs, "math", meta) for text, attrs in picked])
    return groups


# ---- instruction following -----------------------------------------------------------------------


def _keywords(rng: random.Random, text: str) -> dict[str, Any]:
    words = [w for w in KEYWORD_POOL if w not in text.lower()]
    return {"keywords": rng.sample(words, 2)}


# kind -> (params from rng and the answer, compliant rewrite of the answer given params)
IF_KINDS: dict[str, tuple[Callable[[random.Random, str], dict], Callable[[str, dict], str]]] = {
    "all_lowercase": (lambda r, t: {}, lambda t, p: t.lower()),
    "all_uppercase": (lambda r, t: {}, lambda t, p: t.upper()),
    "end_phrase": (lambda r, t: {"phrase": r.choice(END_PHRASES)}, lambda t, p: f"{t} {p['phrase']}"),
    "start_phrase": (lambda r, t: {"phrase": r.choice(START_PHRASES)}, lambda t, p: f"{p['phrase']} {t}"),
    "no_commas": (lambda r, t: {}, lambda t, p: t.replace(",", "")),
    "quotation": (lambda r, t: {}, lambda t, p: f'"{t}"'),
    "keywords_include": (
        _keywords,
        lambda t, p: f"{t} In short, it is a matter of {p['keywords'][0]} and {p['keywords'][1]}.",
    ),
    "title": (lambda r, t: {}, lambda t, p: f"<<{t.split(' ', 1)[0].strip(',.').lower()} explained>>\n{t}"),
    "postscript": (lambda r, t: {"marker": "P.S."}, lambda t, p: f"{t}\n\nP.S. Ask me if you want more detail."),
    "json_format": (lambda r, t: {}, lambda t, p: json.dumps({"answer": t})),
}


def instruction_rows(rng: random.Random, bank: list[tuple[str, tuple[str, ...]]]) -> list[list[Row]]:
    """For each question and instruction kind: a compliant and a non-compliant response (verified)."""
    groups = []
    for question, sentences in bank:
        answer = " ".join(sentences)
        for kind, (sample, comply) in IF_KINDS.items():
            ins = make_instruction(kind, sample(rng, answer))
            good, bad = comply(answer, ins["params"]), answer
            if not (verify_all(good, [ins])[0] and not verify_all(bad, [ins])[0]):
                continue  # the rewrite must decide the instruction, or the pair teaches nothing true
            prompt = if_single_prompt(question, [ins])
            meta = {"instructions": [ins]}
            rows = [
                _row(prompt, good, (4, 4, 4, 2, 2), "instruction", meta),
                _row(prompt, bad, (1, 2, 3, 2, 2), "instruction", meta),
            ]
            rng.shuffle(rows)
            groups.append(rows)
    return groups


# ---- chat: coherence and verbosity ---------------------------------------------------------------


def _scramble(rng: random.Random, sentence: str) -> str:
    words = sentence.rstrip(".").split()
    rng.shuffle(words)
    return " ".join(words) + "."


def chat_rows(rng: random.Random, bank: list[tuple[str, tuple[str, ...]]]) -> list[list[Row]]:
    """For each question: a good answer and three of: mildly padded, heavily padded, cut off, scrambled."""
    groups = []
    for question, sentences in bank:
        answer = " ".join(sentences)
        variants = [
            (f"{answer} {rng.choice(FILLER_CLOSERS)}", (4, 4, 4, 2, 3)),
            (
                f"{rng.choice(FILLER_OPENERS)} {answer} {rng.choice(FILLER_CLOSERS)} {rng.choice(FILLER_OPENERS)} "
                f"{answer}",
                (2, 4, 2, 2, 4),
            ),
            (" ".join(sentences[0].split()[: max(3, len(sentences[0].split()) // 2)]), (1, 2, 1, 1, 0)),
            (" ".join(_scramble(rng, s) for s in sentences), (0, 1, 0, 2, 2)),
        ]
        rows = [_row(question, answer, (4, 4, 4, 2, 2), "chat", {})]
        rows += [_row(question, t, a, "chat", {}) for t, a in rng.sample(variants, 3)]
        rng.shuffle(rows)
        groups.append(rows)
    return groups


def build(seed: int = SEED, n_math: int = 300) -> tuple[list[Row], list[Row]]:
    """The whole set as ``(train rows, held-out rows)``; the same seed gives the same rows."""
    rng = random.Random(seed)
    train_bank, held_bank = list(QA_BANK[:-HELDOUT_BANK_ITEMS]), list(QA_BANK[-HELDOUT_BANK_ITEMS:])
    math = math_rows(rng, n_math)
    n_held = round(HELDOUT_MATH_SHARE * len(math))
    train = math[n_held:] + instruction_rows(rng, train_bank) + chat_rows(rng, train_bank)
    held = math[:n_held] + instruction_rows(rng, held_bank) + chat_rows(rng, held_bank)
    rng.shuffle(train)
    return [r for g in train for r in g], [r for g in held for r in g]


def write(out_dir: str, seed: int = SEED) -> dict[str, int]:
    """Write ``helpsteer_train.jsonl`` and ``helpsteer_heldout.jsonl`` into ``out_dir``; return row counts."""
    train, held = build(seed)
    counts = {}
    for name, rows in (("helpsteer_train.jsonl", train), ("helpsteer_heldout.jsonl", held)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts[name] = len(rows)
    return counts


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")
    print(json.dumps(write(target)))
