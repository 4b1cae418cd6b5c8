"""Synthetic prompt pipelines as request builders and reply collectors around one ``ask`` call site.

Nemotron-4 340B report, section 3.2.1. Every step is a pair: a pure builder turning what is known so far into
requests ``(key, messages, sampling name)``, and a pure collector turning the generator's replies (``key ->
text``) into items, counting what it had to skip. ``flywheel.stages.prompts.synthesize`` chains the steps,
sending each step's requests (from every pipeline that is ready) through one ``ask`` call so that independent
pipelines share the engines' batches:

    problems_closed_qa  math problems, Python problems, closed Q&A instructions
    topics              macro topics, merged with the user-supplied list
    subtopics           subtopics of every topic
    questions_writing   open questions per topic/subtopic, writing tasks per (document type, topic)
    refine              "more detailed and specific" rewrites of questions and writing tasks
    answers             assistant turns: multi-turn IF first turns, IF revision bases, two-turn first turns
    followups           the user's next question in two-turn prompts

Malformed generator output is never an error: the item is skipped and counted under ``skipped``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flywheel.sdg import if_prompts, parse, templates, two_turn
from flywheel.sdg.config import SDGConfig
from flywheel.sdg.defaults import CODE_LEVELS, MATH_LEVELS
from flywheel.sdg.dialogue import clean_user_turn, select_personas, user_turn_prompt
from flywheel.sdg.parse import strip_think
from flywheel.sdg.quality import is_refusal, normalize_text
from flywheel.sdg.rows import make_prompt_row

Request = tuple[str, list[dict[str, Any]], str]  # (key, messages, sampling name: "prompt" | "answer")
Ask = Callable[[str, list[Request]], dict[str, str]]  # (step name, requests) -> {key: reply text}


@dataclass
class Item:
    """A single-turn prompt on its way to a row: text plus where it came from."""

    kind: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    template: str = ""


def reply(replies: dict[str, str], key: str) -> str:
    """The reply for ``key`` ("" when the engine returned none, which every parser rejects)."""
    text = replies.get(key)
    return text if isinstance(text, str) else ""


def clean_answer(text: str, min_chars: int = 1) -> str | None:
    """An assistant turn kept verbatim: reasoning blocks dropped; blank or refusing -> ``None``."""
    text = strip_think(text or "").strip()
    if len(text) < min_chars or is_refusal(text):
        return None
    return text


# -- wave 1/2: topics -------------------------------------------------------------------------------
def merge_topics(user_topics: Sequence[str], generated: Sequence[str]) -> list[str]:
    """User topics first, then generated ones not already present (case/punctuation-insensitive)."""
    seen: set[str] = set()
    merged: list[str] = []
    for topic in [*user_topics, *generated]:
        norm = normalize_text(topic)
        if norm and norm not in seen:
            seen.add(norm)
            merged.append(topic.strip())
    return merged


def collect_list(
    replies: dict[str, str],
    keys: Sequence[str],
    n: int,
    skipped: Counter[str],
    what: str,
    max_chars: int = 200,
    min_chars: int = 2,
) -> list[list[str]]:
    """``parse_list`` per key; an unparsable reply counts as ``skipped[what + "_unparsed"]``."""
    out = []
    for key in keys:
        items = parse.parse_list(reply(replies, key), n, max_chars=max_chars, min_chars=min_chars)
        if not items:
            skipped[f"{what}_unparsed"] += 1
        out.append(items)
    return out


def collect_single(
    replies: dict[str, str], keys: Sequence[str], skipped: Counter[str], what: str, max_paragraphs: int = 1
) -> list[str | None]:
    """``parse_single`` per key; ``None`` (counted as ``what + "_unparsed"``) where nothing usable came back."""
    out: list[str | None] = []
    for key in keys:
        text = parse.parse_single(reply(replies, key), max_paragraphs=max_paragraphs)
        if text is None:
            skipped[f"{what}_unparsed"] += 1
        out.append(text)
    return out


# -- wave 1: keyword problems and closed Q&A ---------------------------------------------------------
def problem_requests(kind: str, keywords: Sequence[str], per_keyword: int) -> list[Request]:
    """One request per (keyword, repetition); the difficulty level rotates so one keyword yields varied tasks."""
    levels, build = (
        (MATH_LEVELS, templates.math_problem_prompt) if kind == "math" else (CODE_LEVELS, templates.code_problem_prompt)
    )
    reqs = []
    for i, kw in enumerate(keywords):
        for j in range(per_keyword):
            reqs.append((f"{kind}/{i}/{j}", build(kw, levels[(i + j) % len(levels)]), "prompt"))
    return reqs


def collect_problems(
    kind: str, reqs: Sequence[Request], keywords: Sequence[str], replies: dict[str, str], skipped: Counter[str]
) -> list[Item]:
    levels = MATH_LEVELS if kind == "math" else CODE_LEVELS
    keys = [k for k, _, _ in reqs]
    texts = collect_single(replies, keys, skipped, kind, max_paragraphs=4)
    items = []
    for key, text in zip(keys, texts):
        if text is None:
            continue
        i, j = (int(x) for x in key.split("/")[1:])
        items.append(
            Item(kind, text, {"keyword": keywords[i], "level": levels[(i + j) % len(levels)]}, f"{kind}_problem_prompt")
        )
    return items


def closed_qa_requests(documents: Sequence[str], per_document: int, max_chars: int) -> list[Request]:
    return [
        (f"closed_qa/{i}/{j}", templates.closed_qa_instruction_prompt(templates.clip_document(d, max_chars)), "prompt")
        for i, d in enumerate(documents)
        for j in range(per_document)
    ]


def collect_closed_qa(
    reqs: Sequence[Request], documents: Sequence[str], max_chars: int, replies: dict[str, str], skipped: Counter[str]
) -> list[Item]:
    """Instruction about a document -> final prompt joining both with one of the fixed templates."""
    keys = [k for k, _, _ in reqs]
    items = []
    for key, instruction in zip(keys, collect_single(replies, keys, skipped, "closed_qa")):
        if instruction is None:
            continue
        doc = int(key.split("/")[1])
        text = templates.closed_qa_user_prompt(templates.clip_document(documents[doc], max_chars), instruction)
        items.append(Item("closed_qa", text, {"document": doc, "instruction": instruction}, "closed_qa_user_prompt"))
    return items


# -- waves 3/4: open Q&A and writing -----------------------------------------------------------------
def refine_requests(items: Sequence[Item]) -> list[Request]:
    build = {"open_qa": templates.refine_question_prompt, "writing": templates.refine_writing_prompt}
    return [(f"refine/{i}", build[it.kind](it.text), "prompt") for i, it in enumerate(items)]


def collect_refined(items: Sequence[Item], replies: dict[str, str], skipped: Counter[str]) -> list[Item]:
    """The refined text where it parsed; else the draft (counted as ``refine_unparsed``)."""
    keys = [f"refine/{i}" for i in range(len(items))]
    out = []
    for it, better in zip(items, collect_single(replies, keys, skipped, "refine", max_paragraphs=2)):
        meta = {**it.meta, "refined": better is not None, **({"draft": it.text} if better else {})}
        out.append(Item(it.kind, better or it.text, meta, it.template + ("+refine" if better else "")))
    return out


# -- waves 5/6: instruction following and two-turn prompts -------------------------------------------
IF_SHAPES = ("if_single", "if_multi", "if_revision")


@dataclass
class IFPlan:
    """One instruction-following prompt to build: its shape, base prompt, instructions and second question."""

    shape: str  # if_single | if_multi | if_revision
    base: Item
    instructions: list[dict[str, Any]]
    second: str = ""  # if_multi: the turn-2 question


def plan_if(
    items: Sequence[Item], sdg: SDGConfig, rng: random.Random, skipped: Counter[str], shapes: Sequence[str] = IF_SHAPES
) -> list[IFPlan]:
    """Pick ``sdg.if_fraction`` of the synthetic prompts as IF bases, dealt round-robin to ``shapes``, each with
    ``sdg.instructions_per_prompt`` compatible instructions (and, for multi-turn, another synthetic prompt as the
    second question)."""
    n = round(len(items) * sdg.if_fraction) if shapes else 0
    chosen = rng.sample(list(items), n) if n else []
    plans = []
    for i, base in enumerate(chosen):
        ins = if_prompts.sample_instructions(rng, sdg.instructions_per_prompt, sdg.if_kinds or None)
        if not ins:
            skipped["if_no_instructions"] += 1
            continue
        shape = shapes[i % len(shapes)]
        second = items[rng.randrange(len(items))].text if shape == "if_multi" else ""
        plans.append(IFPlan(shape, base, ins, second))
    return plans


def if_answer_requests(plans: Sequence[IFPlan]) -> list[Request]:
    """Assistant turns the multi-turn and revision shapes need, answered greedily (``answer`` sampling).

    Multi-turn: the answer to turn 1, instructions included (the answer should already follow them).
    Revision: the answer to the plain question (the final turn asks to rewrite it to follow them).
    """
    reqs = []
    for i, p in enumerate(plans):
        if p.shape == "if_multi":
            reqs.append((f"if/{i}", if_prompts.if_multi_messages([p.base.text], p.instructions), "answer"))
        elif p.shape == "if_revision":
            reqs.append((f"if/{i}", templates.user(p.base.text), "answer"))
    return reqs


def if_rows(plans: Sequence[IFPlan], answers: dict[str, str], skipped: Counter[str]) -> list[dict[str, Any]]:
    """Prompt rows for the plans; a plan whose needed answer is blank or a refusal is skipped and counted."""
    rows = []
    for i, p in enumerate(plans):
        content: str | list[dict[str, Any]]
        if p.shape == "if_single":
            content = if_prompts.if_single_prompt(p.base.text, p.instructions)
        else:
            answer = clean_answer(reply(answers, f"if/{i}"))
            if answer is None:
                skipped[f"{p.shape}_answer_unusable"] += 1
                continue
            if p.shape == "if_multi":
                content = if_prompts.if_multi_messages([p.base.text, p.second], p.instructions, [answer])
            else:
                content = if_prompts.if_revision_messages(p.base.text, answer, p.instructions)
        meta = {"instructions": p.instructions, "base_kind": p.base.kind, "base_meta": p.base.meta}
        lin = {"template": f"{p.base.template}+{p.shape}", "instruction_kinds": [x["kind"] for x in p.instructions]}
        rows.append(make_prompt_row(p.shape, content, meta=meta, lineage=lin))
    return rows


def two_turn_firsts(file_firsts: Sequence[str], items: Sequence[Item], count: int, rng: random.Random) -> list[str]:
    """First user turns for two-turn prompts: the file's single-turn prompts first, then synthetic ones."""
    pool = list(file_firsts)[:count]
    rest = [it.text for it in items]
    rng.shuffle(rest)
    return pool + rest[: max(0, count - len(pool))]


def two_turn_answer_requests(firsts: Sequence[str]) -> list[Request]:
    return [(f"two_turn/{i}", templates.user(q), "answer") for i, q in enumerate(firsts)]


def followup_requests(firsts: Sequence[str], answers: dict[str, str], skipped: Counter[str]) -> list[Request]:
    """Follow-up requests for the exchanges whose answer is usable (others counted as skipped)."""
    reqs = []
    for i, q in enumerate(firsts):
        answer = clean_answer(reply(answers, f"two_turn/{i}"))
        if answer is None:
            skipped["two_turn_answer_unusable"] += 1
            continue
        reqs.append((f"followup/{i}", two_turn.followup_prompt(q, answer), "prompt"))
    return reqs


def two_turn_rows(
    firsts: Sequence[str], answers: dict[str, str], followups: dict[str, str], skipped: Counter[str]
) -> list[dict[str, Any]]:
    rows = []
    for i, q in enumerate(firsts):
        answer = clean_answer(reply(answers, f"two_turn/{i}"))
        if answer is None:  # counted by followup_requests
            continue
        follow = two_turn.parse_followup(reply(followups, f"followup/{i}"))
        if follow is None:
            skipped["followup_unparsed"] += 1
            continue
        rows.append(
            make_prompt_row(
                "two_turn",
                two_turn.two_turn_messages(q, answer, follow),
                meta={"first_turn": q},
                lineage={"template": "followup_prompt"},
            )
        )
    return rows


# ---- role-played dialogues (report section 3.2.2) ---------------------------------------------------


def role_play(
    ask: Ask, openers: list[dict[str, Any]], personas: list[dict[str, Any]], turns: int, skipped: Counter[str]
) -> list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    """Run the dialogues: (opener row, persona, messages) for each that reached ``turns`` user turns.

    Args:
        ask: ``(step, [(key, messages, sampling name)]) -> {key: text}``.
        openers: prompt rows with one user message.
        personas: one persona per opener (``{"name", "description"}``).
        turns: user turns per dialogue (the opener counts as the first).
        skipped: counts of dropped dialogues by reason.
    """
    live = {i: [dict(o["messages"][0])] for i, o in enumerate(openers)}
    for t in range(1, turns + 1):
        replies = ask(f"assistant_{t}", [(str(i), msgs, "answer") for i, msgs in live.items()])
        for i in list(live):
            answer = clean_answer(reply(replies, str(i)))
            if answer is None:
                skipped["assistant_turn_unusable"] += 1
                del live[i]
            else:
                live[i].append({"role": "assistant", "content": answer})
        if t == turns:
            break
        replies = ask(
            f"user_{t + 1}", [(str(i), user_turn_prompt(msgs, personas[i]), "prompt") for i, msgs in live.items()]
        )
        for i in list(live):
            turn = clean_user_turn(reply(replies, str(i)))
            if turn is None:
                skipped["user_turn_unusable"] += 1
                del live[i]
            else:
                live[i].append({"role": "user", "content": turn})
    return [(openers[i], personas[i], msgs) for i, msgs in sorted(live.items())]


def pick_openers(
    rows: list[dict[str, Any]], count: int, names: list[str], seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` single-turn training prompts (seeded shuffle) and a persona for each (seeded choice)."""
    rng = random.Random(seed)
    singles = [r for r in rows if r.get("split", "train") == "train" and len(r["messages"]) == 1]
    rng.shuffle(singles)
    chosen = singles[:count]
    pool = select_personas(names)
    return chosen, [rng.choice(pool) for _ in chosen]
