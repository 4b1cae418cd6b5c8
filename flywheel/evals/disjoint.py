"""Disjointness of the held-out suites from everything the SDG can produce or the training can see.

See :mod:`flywheel.evals.suites` for what is gathered and how a text counts as overlapping.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from flywheel.evals.suites import read_data
from flywheel.reward.bank import FILLER_CLOSERS, FILLER_OPENERS, QA_BANK
from flywheel.reward.helpsteer_set import math_problem
from flywheel.sdg import defaults, dialogue, if_prompts, templates, two_turn

MIN_CONTAIN_WORDS = 4


def normalize(text: str) -> str:
    """Lower case with runs of whitespace collapsed to one space."""
    return re.sub(r"\s+", " ", text).strip().lower()


_SENTINEL = "\x00"
_COUNT = 7919  # stands for a count argument; split on like the sentinel


def _fragments(text: str) -> list[str]:
    """The fixed text of a rendered template: the pieces between the sentinel arguments."""
    pieces = re.split(rf"{_SENTINEL}|{_COUNT}", text)
    return [p.strip() for p in pieces if len(p.split()) >= MIN_CONTAIN_WORDS]


def sdg_texts() -> dict[str, list[str]]:
    """Fixed texts of the SDG and reward-set builders (templates, personas, banks, defaults)."""
    s, n = _SENTINEL, _COUNT
    ins = [{"kind": "x", "params": {}, "text": s}]
    rendered = [
        templates.macro_topics_prompt(n),
        templates.subtopics_prompt(s, n),
        templates.questions_prompt(s, n),
        templates.refine_question_prompt(s),
        templates.writing_tasks_prompt(s, s, n),
        templates.refine_writing_prompt(s),
        templates.closed_qa_instruction_prompt(s),
        templates.math_problem_prompt(s, s),
        templates.code_problem_prompt(s, s),
        two_turn.followup_prompt(s, s),
        if_prompts.if_multi_messages([s], ins),
        if_prompts.if_revision_messages(s, s, ins),
    ] + [
        dialogue.user_turn_prompt([{"role": "user", "content": s}, {"role": "assistant", "content": s}], p)
        for p in dialogue.PERSONAS
    ]
    fragments = [f for msgs in rendered for m in msgs for f in _fragments(m["content"])]
    fragments += [f for t in templates.CLOSED_QA_TEMPLATES for f in _fragments(t.format(document=s, instruction=s))]
    return {
        "sdg_templates": fragments,
        "sdg_defaults": [
            *defaults.DEFAULT_TOPICS,
            *defaults.DEFAULT_DOC_TYPES,
            *defaults.DEFAULT_MATH_KEYWORDS,
            *defaults.DEFAULT_CODE_KEYWORDS,
        ],
        "reward_bank": [q for q, _ in QA_BANK]
        + [" ".join(a) for _, a in QA_BANK]
        + list(FILLER_OPENERS)
        + list(FILLER_CLOSERS),
    }


def _user_texts(prompt: str) -> list[str]:
    """User turns of a HelpSteer-format prompt, each whole and as its first paragraph."""
    turns = re.split(r"\n<extra_id_1>(?:User|Assistant)\n", prompt)[::2]
    return [t for turn in turns for t in (turn, turn.split("\n\n")[0])]


def training_texts(data_dir: str | None = None, math_seeds: int = 3000) -> dict[str, list[str]]:
    """Every source an eval prompt must stay clear of, by name (see the module docstring)."""
    out = {
        name: [m["content"] for r in read_data(data_dir, f"{name}.jsonl") for m in r["messages"]]
        for name in ("seed_prompts", "heldout_prompts")
    }
    for name in ("helpsteer_train", "helpsteer_heldout"):
        rows = read_data(data_dir, f"{name}.jsonl")
        out[name] = sorted({t for r in rows for t in _user_texts(r["prompt"])})
    out["closed_qa_documents"] = [r["text"] for r in read_data(data_dir, "closed_qa_documents.jsonl")]
    out.update(sdg_texts())
    out["reward_math_problem"] = [math_problem(random.Random(i))["question"] for i in range(math_seeds)]
    return out


def _eval_texts(row: Mapping[str, Any]) -> list[str]:
    prompts = [m["content"] for m in row["messages"] if m["role"] == "user"]
    return prompts + [p.split("\n\n")[0] for p in prompts]


def overlap_report(eval_rows: Iterable[Mapping[str, Any]], sources: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """Where eval prompts meet source texts, after ``normalize``.

    Args:
        eval_rows: suite rows (``{"id", "messages", ...}``); each user turn is checked whole and
            as its first paragraph (the base task).
        sources: ``{name: texts}``, e.g. from ``training_texts``.

    Returns:
        ``{"eval_rows", "source_texts": {name: count}, "hits", "duplicate_ids",
        "duplicate_prompts"}``; each hit is ``{"id", "source", "relation", "eval", "text"}`` with
        relation ``"equal"``, ``"eval_contains_source"`` or ``"source_contains_eval"``. An empty
        ``hits`` and empty duplicate lists mean the suites are disjoint.
    """
    eval_rows = list(eval_rows)
    pairs = sorted({(row["id"], normalize(t)) for row in eval_rows for t in _eval_texts(row)})
    eval_long = [(i, t) for i, t in pairs if len(t.split()) >= MIN_CONTAIN_WORDS]
    eval_joined = _SENTINEL.join(t for _, t in pairs)
    counts, hits = {}, []

    def hit(row_id: str, name: str, relation: str, text: str, source: str) -> None:
        hits.append({"id": row_id, "source": name, "relation": relation, "eval": text, "text": source})

    for name, texts in sources.items():
        norm = sorted({normalize(t) for t in texts if t and t.strip()})
        counts[name] = len(norm)
        long = [t for t in norm if len(t.split()) >= MIN_CONTAIN_WORDS]
        exact, source_joined = set(norm), _SENTINEL.join(long)
        for row_id, text in pairs:
            if text in exact:
                hit(row_id, name, "equal", text, text)
        # One scan of the joined strings finds candidates; only those are attributed pair by pair.
        for row_id, text in eval_long:
            if text in source_joined:
                for t in long:
                    if text in t and text != t:
                        hit(row_id, name, "source_contains_eval", text, t)
        for t in long:
            if t in eval_joined:
                for row_id, text in pairs:
                    if t in text and t != text:
                        hit(row_id, name, "eval_contains_source", text, t)
    ids = [r["id"] for r in eval_rows]
    prompts = [normalize("\n".join(m["content"] for m in r["messages"])) for r in eval_rows]
    return {
        "eval_rows": len(eval_rows),
        "source_texts": counts,
        "hits": hits,
        "duplicate_ids": _repeated(ids),
        "duplicate_prompts": _repeated(prompts),
    }


def _repeated(values: list[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)
