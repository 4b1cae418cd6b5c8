"""Held-out evaluation suites, built deterministically: instruction following and math word problems.

* ``eval_if.jsonl``: each base task of ``eval_if_tasks.jsonl`` (requests written for this suite,
  kept as data) with one to three compatible verifiable instructions from
  ``flywheel.sdg.instructions``; ``meta["instructions"]`` is what
  ``flywheel.judges.verifiers.verify`` and ``flywheel.evals.ifeval.score_response`` read. Every
  instruction kind of the registry leads some prompts, and instruction sets follow the SDG's
  ``CONFLICTS`` plus two suite rules that keep every set satisfiable (see ``_pair_ok``).
* ``eval_math.jsonl``: multi-step word problems (two to four operations) from the templates of
  :mod:`flywheel.evals.math_suite` with integer answers in ``meta["answer"]`` (a string, the format ``verify_math`` reads).
  The prompt asks for a last line ``Answer: N``, which the verifier's "answer:" rule extracts.

Disjointness (:mod:`flywheel.evals.disjoint`). ``training_texts`` gathers every text the SDG or the training can see: the shipped
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
import os
import random
import sys
from collections.abc import Mapping
from importlib import resources
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.evals.math_suite import build_math
from flywheel.sdg.if_prompts import compatible, if_single_prompt
from flywheel.sdg.instructions import REGISTRY, make_instruction

SEED = 20250121
IF_FILE, MATH_FILE, TASKS_FILE = "eval_if.jsonl", "eval_math.jsonl", "eval_if_tasks.jsonl"
PROMPTS_PER_TASK = 3

Row = dict[str, Any]


def base_tasks(data_dir: str | None = None) -> list[str]:
    """The base requests of the instruction-following suite, written for it (``eval_if_tasks.jsonl``)."""
    return [row["task"] for row in read_data(data_dir, TASKS_FILE)]


def read_data(data_dir: str | None, name: str) -> list[dict[str, Any]]:
    """Rows of a JSONL file shipped in ``flywheel/data`` (or in ``data_dir``)."""
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
