"""Held-out evaluation suites, built deterministically: instruction following and math word problems.

* ``eval_if.jsonl``: each base task of ``eval_if_tasks.jsonl`` (requests written for this suite,
  kept as data) with one to three compatible verifiable instructions from
  ``flywheel.sdg.instructions``; ``meta["instructions"]`` is what
  ``flywheel.judges.verifiers.verify`` and ``flywheel.evals.ifeval.score_response`` read. Every
  instruction kind of the registry leads some prompts, and instruction sets follow the SDG's
  ``CONFLICTS`` plus two suite rules that keep every set satisfiable (see ``_pair_ok``).
* ``eval_math.jsonl``: multi-step word problems (two to four operations) from templates of this
  module with integer answers in ``meta["answer"]`` (a string, the format ``verify_math`` reads).
  The prompt asks for a last line ``Answer: N``, which the verifier's "answer:" rule extracts.

Disjointness. ``training_texts`` gathers every text the SDG or the training can see: the shipped
seed, held-out, HelpSteer-format and closed Q&A files; the SDG's generator templates (rendered with
sentinel arguments and cut into their fixed fragments), personas and default topic lists; the
reward set's question bank; and the questions ``helpsteer_set.math_problem`` writes for the first
``math_seeds`` seeds. ``overlap_report`` then normalises texts (lower case, whitespace collapsed)
and flags an eval prompt or base task that equals a source text, contains one, or is contained in
one (containment only for texts of at least ``MIN_CONTAIN_WORDS`` words, so a default topic such
as "history" only has to differ). It also flags ids or prompts that occur twice across the suites.
The unit tests require an empty report. Rebuild with ``python -m flywheel.evals.suites [OUT_DIR]``.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.reward.bank import FILLER_CLOSERS, FILLER_OPENERS, QA_BANK
from flywheel.reward.helpsteer_set import math_problem
from flywheel.sdg import defaults, dialogue, if_prompts, templates, two_turn
from flywheel.sdg.if_prompts import compatible, if_single_prompt
from flywheel.sdg.instructions import REGISTRY, make_instruction

SEED = 20250121
IF_FILE, MATH_FILE, TASKS_FILE = "eval_if.jsonl", "eval_math.jsonl", "eval_if_tasks.jsonl"
PROMPTS_PER_TASK = 3
PROBLEMS_PER_FAMILY = 12
MIN_CONTAIN_WORDS = 4
MATH_SUFFIX = 'Work it out step by step, then end with a final line of the form "Answer: N", where N is a whole number.'

Row = dict[str, Any]


def base_tasks(data_dir: str | None = None) -> list[str]:
    """The base requests of the instruction-following suite, written for it (``eval_if_tasks.jsonl``)."""
    return [row["task"] for row in _read_jsonl(data_dir, TASKS_FILE)]


def _read_jsonl(data_dir: str | None, name: str) -> list[dict[str, Any]]:
    base = data_dir or str(resources.files("flywheel") / "data")
    with open(os.path.join(base, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- instruction-following suite ----------------------------------------------------------------

_REQUIRED_TEXT_KEYS = ("phrase", "marker", "keywords", "keyword")


def _required_text(ins: Mapping[str, Any]) -> str:
    """Text a compliant response must contain verbatim for this instruction, lower-cased."""
    parts = ["section"] if ins["kind"] == "sections" else []
    for key in _REQUIRED_TEXT_KEYS:
        value = ins["params"].get(key)
        parts.extend([value] if isinstance(value, str) else list(value or ()))
    return " ".join(parts).lower()


def _pair_ok(x: Mapping[str, Any], y: Mapping[str, Any]) -> bool:
    """Suite rules on top of ``compatible``, so that every instruction set can be met at once.

    * a ceiling on a letter ("less than 3 q") must not meet a phrase or keyword another
      instruction requires ("quality");
    * a ceiling on sentences must leave one sentence per required paragraph, section or bullet.
    """
    if not compatible(x["kind"], y["kind"]):
        return False
    px = x["params"]
    if x["kind"] == "letter_frequency" and px["relation"] == "less than":
        return px["letter"] not in _required_text(y)
    if (
        x["kind"] == "sentence_count"
        and px["relation"] == "less than"
        and y["kind"] in ("paragraphs", "sections", "bullets")
    ):
        return bool(px["n"] > y["params"]["n"])
    return True


def _instruction_set(rng: random.Random, leader: str, n: int) -> list[dict[str, Any]]:
    """``leader`` plus up to ``n - 1`` more instructions that fit with each other."""
    chosen: list[dict[str, Any]] = []
    for kind in [leader] + rng.sample(sorted(REGISTRY), len(REGISTRY)):
        if len(chosen) == n:
            break
        ins = make_instruction(kind, REGISTRY[kind].sample(rng))
        if all(_pair_ok(ins, c) and _pair_ok(c, ins) for c in chosen):
            chosen.append(ins)
    rng.shuffle(chosen)
    return chosen


def build_if(seed: int = SEED, tasks: list[str] | None = None) -> list[Row]:
    """The instruction-following suite: ``PROMPTS_PER_TASK`` prompts per base task.

    Prompt ``i`` uses base task ``i mod len(tasks)`` and is led by instruction kind
    ``i mod len(REGISTRY)``, so each kind leads about ``len(rows) / len(REGISTRY)`` prompts.

    Args:
        seed: seed of the instruction draws.
        tasks: base requests; ``None`` reads the shipped ``base_tasks()``.
    """
    tasks = base_tasks() if tasks is None else tasks
    rng, kinds = random.Random(seed), sorted(REGISTRY)
    rows = []
    for i in range(PROMPTS_PER_TASK * len(tasks)):
        instructions = _instruction_set(rng, kinds[i % len(kinds)], rng.randint(1, 3))
        prompt = if_single_prompt(tasks[i % len(tasks)], instructions)
        rows.append(
            {
                "id": f"eval-if-{i + 1:04d}",
                "messages": [{"role": "user", "content": prompt}],
                "meta": {"instructions": instructions},
            }
        )
    return rows


# ---- math suite ---------------------------------------------------------------------------------

NAMES = (
    "Marisol",
    "Tobias",
    "Priya",
    "Oskar",
    "Leilani",
    "Mateo",
    "Ingrid",
    "Rashid",
    "Noor",
    "Callum",
    "Yuki",
    "Zanele",
    "Bruno",
    "Amara",
    "Soren",
    "Talia",
)
Problem = tuple[str, int]


def _discount(r: random.Random, who: str) -> Problem:
    price, pct, fee = 20 * r.randint(3, 20), r.choice((10, 20, 25, 50)), r.randint(3, 12)
    thing = r.choice(("desk lamp", "backpack", "rug", "tent", "desk chair", "bookshelf"))
    return (
        (
            f"{who} orders a {thing} listed at ${price}. The shop takes {pct}% off the listed price "
            f"and then adds a flat delivery charge of ${fee}. What does {who} pay altogether, in "
            "dollars?"
        ),
        price - price * pct // 100 + fee,
    )


def _ride(r: random.Random, who: str) -> Problem:
    v, h, extra = r.randint(12, 24), r.randint(2, 4), r.randint(5, 30)
    return (
        (
            f"{who} cycles at a steady {v} kilometres per hour for {h} hours, stops for lunch, then "
            f"rides another {extra} kilometres to a campsite. How long is the whole ride in "
            "kilometres?"
        ),
        v * h + extra,
    )


def _ages(r: random.Random, who: str) -> Problem:
    other = r.choice([n for n in NAMES if n != who])
    age, gap, years = r.randint(12, 40), r.randint(2, 9), r.randint(3, 15)
    return (
        (
            f"{who} is {age} years old and {other} is {gap} years younger than {who}. What will "
            f"their ages add up to {years} years from now?"
        ),
        age + (age - gap) + 2 * years,
    )


def _leftover_rolls(r: random.Random, who: str) -> Problem:
    trays, per, box = r.randint(3, 9), r.randint(6, 14), r.randint(4, 9)
    if trays * per % box == 0:
        per += 1
    return (
        (
            f"A bakery bakes {trays} trays with {per} rolls on each tray. The rolls go into boxes "
            f"of {box}, and only full boxes leave the shop. How many rolls stay behind?"
        ),
        trays * per % box,
    )


def _flour(r: random.Random, who: str) -> Problem:
    grams, kilos, bags = r.choice((250, 300, 400, 450, 600, 700)), r.choice((2, 3, 5)), r.randint(2, 6)
    return (
        (
            f"One loaf of {who}'s bread recipe uses {grams} grams of flour. The pantry holds {bags} "
            f"bags of flour weighing {kilos} kilograms each. How many complete loaves can be "
            "baked?"
        ),
        bags * kilos * 1000 // grams,
    )


def _wages(r: random.Random, who: str) -> Problem:
    hours, rate, weeks = r.randint(8, 25), r.randint(9, 18), r.randint(3, 8)
    spent = r.randint(20, hours * rate * weeks // 2)
    return (
        (
            f"{who} works {hours} hours every week at a cafe and is paid ${rate} per hour. After "
            f"{weeks} weeks, {who} spends ${spent} on a concert ticket and keeps the rest. What "
            f"is left for {who}, in dollars?"
        ),
        hours * rate * weeks - spent,
    )


def _diesel(r: random.Random, who: str) -> Problem:
    per100, km, price = r.randint(5, 12), 100 * r.randint(2, 9), r.randint(2, 3)
    return (
        (
            f"A delivery van burns {per100} litres of diesel for every 100 kilometres. {who}'s route "
            f"is {km} kilometres long and diesel costs ${price} per litre. What does the diesel "
            "for one run of the route cost, in dollars?"
        ),
        per100 * km // 100 * price,
    )


def _packs(r: random.Random, who: str) -> Problem:
    size, pupils, price = r.choice((6, 8, 10, 12)), r.randint(21, 58), r.randint(3, 9)
    return (
        (
            f"Folders are sold only in packs of {size}, at ${price} a pack. {who} wants one folder "
            f"for each of {pupils} pupils. What is the least {who} can spend, in dollars?"
        ),
        math.ceil(pupils / size) * price,
    )


def _saving(r: random.Random, who: str) -> Problem:
    have, weekly = r.randint(20, 80), r.randint(8, 25)
    cost = have + r.randint(50, 300)
    gadget = r.choice(("keyboard", "skateboard", "tablet", "telescope", "guitar"))
    return (
        (
            f"{who} has ${have} in a money box and adds ${weekly} at the end of every week. A "
            f"{gadget} costs ${cost}. After how many weeks can {who} first afford it?"
        ),
        math.ceil((cost - have) / weekly),
    )


def _quiz(r: random.Random, who: str) -> Problem:
    while True:
        scores, target = [r.randint(60, 95) for _ in range(3)], r.randint(72, 90)
        need = 4 * target - sum(scores)
        if 0 <= need <= 100:
            break
    return (
        (
            f"{who} scored {scores[0]}, {scores[1]} and {scores[2]} on three quizzes. What score "
            f"on the fourth quiz makes the average of all four exactly {target}?"
        ),
        need,
    )


def _lawn(r: random.Random, who: str) -> Problem:
    length, width = r.randint(8, 20), r.randint(6, 15)
    side = r.randint(2, min(length, width) - 2)
    return (
        (
            f"{who}'s yard is a rectangle {length} metres long and {width} metres wide. A square "
            f"patio with {side}-metre sides fills one corner and grass covers the rest. How many "
            "square metres of grass are there?"
        ),
        length * width - side * side,
    )


def _bus(r: random.Random, who: str) -> Problem:
    start, off, on, late = r.randint(20, 40), r.randint(3, 10), r.randint(2, 12), r.randint(1, 6)
    if (start - off + on) % 2:
        on += 1
    return (
        (
            f"A bus leaves the depot with {start} people aboard, {who} among them. At the first "
            f"stop {off} people step off and {on} step on. At the second stop half of the people "
            f"aboard step off and {late} step on. How many people are on the bus now?"
        ),
        (start - off + on) // 2 + late,
    )


def _meeting(r: random.Random, who: str) -> Problem:
    s1, s2, hours = r.randint(40, 70), r.randint(50, 90), r.randint(2, 5)
    return (
        (
            f"Two towns are {(s1 + s2) * hours} kilometres apart. At noon {who} drives out of one "
            f"town at {s1} km per hour while a friend drives out of the other toward {who} at {s2} "
            "km per hour. How many hours after noon do they meet?"
        ),
        hours,
    )


def _prize(r: random.Random, who: str) -> Problem:
    parts, unit = r.sample(range(1, 8), 3), r.randint(5, 40)
    return (
        (
            f"{who} and two cousins split ${sum(parts) * unit} in the proportion {parts[0]} : "
            f"{parts[1]} : {parts[2]}. How many dollars make up the biggest share?"
        ),
        max(parts) * unit,
    )


def _festival(r: random.Random, who: str) -> Problem:
    while True:
        films, pause, hours = r.randint(3, 5), r.choice((10, 15, 20)), r.randint(4, 8)
        spare = 60 * hours - (films - 1) * pause
        if spare % films == 0:
            break
    return (
        (
            f"{who} programs {films} films of {spare // films} minutes each for a festival, with a "
            f"{pause}-minute pause between one film and the next. How many hours does the whole "
            "program last?"
        ),
        hours,
    )


def _chairs(r: random.Random, who: str) -> Problem:
    per_row, guests = r.randint(8, 16), r.randint(40, 150)
    if guests % per_row == 0:
        guests += 1
    return (
        (
            f"A hall has rows of {per_row} chairs. {guests} guests arrive and {who} seats them row "
            "by row from the front, filling each row before starting the next. How many chairs "
            "in the last, partly filled row stay empty?"
        ),
        per_row - guests % per_row,
    )


FAMILIES: dict[str, Callable[[random.Random, str], Problem]] = {
    "discount": _discount,
    "ride": _ride,
    "ages": _ages,
    "leftover": _leftover_rolls,
    "flour": _flour,
    "wages": _wages,
    "diesel": _diesel,
    "packs": _packs,
    "saving": _saving,
    "quiz": _quiz,
    "lawn": _lawn,
    "bus": _bus,
    "meeting": _meeting,
    "prize": _prize,
    "festival": _festival,
    "chairs": _chairs,
}


def build_math(seed: int = SEED) -> list[Row]:
    """The math suite: ``PROBLEMS_PER_FAMILY`` distinct problems per template family."""
    rng = random.Random(seed + 1)
    rows: list[Row] = []
    seen: set[str] = set()
    for _ in range(PROBLEMS_PER_FAMILY):
        for family, make in FAMILIES.items():
            question, answer = make(rng, rng.choice(NAMES))
            while question in seen:
                question, answer = make(rng, rng.choice(NAMES))
            seen.add(question)
            rows.append(
                {
                    "id": f"eval-math-{len(rows) + 1:04d}",
                    "messages": [{"role": "user", "content": f"{question}\n\n{MATH_SUFFIX}"}],
                    "meta": {"answer": str(answer), "family": family},
                }
            )
    return rows


# ---- disjointness -------------------------------------------------------------------------------


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
        name: [m["content"] for r in _read_jsonl(data_dir, f"{name}.jsonl") for m in r["messages"]]
        for name in ("seed_prompts", "heldout_prompts")
    }
    for name in ("helpsteer_train", "helpsteer_heldout"):
        rows = _read_jsonl(data_dir, f"{name}.jsonl")
        out[name] = sorted({t for r in rows for t in _user_texts(r["prompt"])})
    out["closed_qa_documents"] = [r["text"] for r in _read_jsonl(data_dir, "closed_qa_documents.jsonl")]
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


# ---- files --------------------------------------------------------------------------------------


def write(out_dir: str, seed: int = SEED) -> dict[str, int]:
    """Write both suites into ``out_dir``; return their row counts."""
    counts = {}
    for name, rows in ((IF_FILE, build_if(seed)), (MATH_FILE, build_math(seed))):
        if not rows:
            raise FlywheelError(f"suites: {name} came out empty")
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        counts[name] = len(rows)
    return counts


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(resources.files("flywheel") / "data")
    print(json.dumps(write(target)))
