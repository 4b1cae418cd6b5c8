"""The shipped eval suites: reproducible, well-formed, verifiable, and disjoint from training data."""

from __future__ import annotations

import json
import math
import random
import re
from importlib import resources

import pytest

from flywheel.evals import disjoint, math_suite, suites
from flywheel.judges.verifiers import verify
from flywheel.reward.helpsteer_set import math_problem
from flywheel.sdg.if_prompts import CONFLICTS, if_single_prompt
from flywheel.sdg.instructions import REGISTRY, make_instruction, verify_all


def _shipped(name: str) -> list[dict]:
    text = (resources.files("flywheel") / "data" / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def if_rows():
    return _shipped(suites.IF_FILE)


@pytest.fixture(scope="module")
def math_rows():
    return _shipped(suites.MATH_FILE)


@pytest.fixture(scope="module")
def sources():
    return disjoint.training_texts()


def _user(row: dict) -> str:
    assert [m["role"] for m in row["messages"]] == ["user"]
    return row["messages"][0]["content"]


# ---- reproducible -------------------------------------------------------------------------------


def test_shipped_files_are_what_the_builder_writes(if_rows, math_rows, tmp_path):
    assert if_rows == suites.build_if()
    assert math_rows == suites.build_math()
    counts = suites.write(str(tmp_path))
    assert counts == {suites.IF_FILE: len(if_rows), suites.MATH_FILE: len(math_rows)}
    for name in counts:
        shipped = (resources.files("flywheel") / "data" / name).read_bytes()
        assert (tmp_path / name).read_bytes() == shipped


def test_counts(if_rows, math_rows):
    tasks = suites.base_tasks()
    assert len(tasks) >= 100 and len(set(tasks)) == len(tasks)
    assert len(if_rows) == suites.PROMPTS_PER_TASK * len(tasks) >= 300
    assert len(math_rows) == math_suite.PROBLEMS_PER_FAMILY * len(math_suite.FAMILIES) >= 150


# ---- instruction-following suite ----------------------------------------------------------------


def test_if_rows_carry_registry_instructions(if_rows):
    tasks = suites.base_tasks()
    for i, row in enumerate(if_rows):
        instructions = row["meta"]["instructions"]
        assert 1 <= len(instructions) <= 3
        for ins in instructions:
            assert ins == make_instruction(ins["kind"], ins["params"])
        assert _user(row) == if_single_prompt(tasks[i % len(tasks)], instructions)
        kinds = [ins["kind"] for ins in instructions]
        assert len(set(kinds)) == len(kinds)
        assert not any(frozenset((a, b)) in CONFLICTS for a in kinds for b in kinds if a != b)


def test_every_instruction_kind_is_covered(if_rows):
    counts = {kind: 0 for kind in REGISTRY}
    for row in if_rows:
        for ins in row["meta"]["instructions"]:
            counts[ins["kind"]] += 1
    assert min(counts.values()) >= 10, counts


def test_if_meta_is_judged_by_the_ground_truth_verifier(if_rows):
    for row in if_rows[:60]:
        meta = row["meta"]
        assert verify(meta, "Plain reply, with a comma.") in (True, False)
        assert verify_all("x", meta["instructions"])[0] in (True, False)
    lower_only = next(r for r in if_rows if [i["kind"] for i in r["meta"]["instructions"]] == ["all_lowercase"])
    assert verify(lower_only["meta"], "all in lower case here.") is True
    assert verify(lower_only["meta"], "Not in lower case.") is False


def test_letter_ceilings_never_meet_required_text(if_rows):
    # Independent of the builder: recompute the text each instruction forces into a reply.
    for row in if_rows:
        instructions = row["meta"]["instructions"]
        for ins in instructions:
            p = ins["params"]
            if ins["kind"] == "letter_frequency" and p["relation"] == "less than":
                forced = " ".join(
                    str(o["params"].get(k, ""))
                    for o in instructions
                    if o is not ins
                    for k in ("phrase", "marker", "keywords", "keyword")
                )
                assert p["letter"] not in forced.lower(), row["id"]


def test_suite_rules_reject_unsatisfiable_pairs():
    q_cap = make_instruction("letter_frequency", {"letter": "q", "relation": "less than", "n": 3})
    quality = make_instruction("keyword_frequency", {"keyword": "quality", "relation": "at least", "n": 4})
    balance = make_instruction("keywords_include", {"keywords": ["balance", "method"]})
    hope = make_instruction("end_phrase", {"phrase": "Hope this helps!"})
    p_cap = make_instruction("letter_frequency", {"letter": "p", "relation": "less than", "n": 2})
    few = make_instruction("sentence_count", {"relation": "less than", "n": 4})
    paragraphs = make_instruction("paragraphs", {"n": 4, "sep": "blank"})
    bullets = make_instruction("bullets", {"n": 3})
    assert not suites._pair_ok(q_cap, quality)
    assert suites._pair_ok(q_cap, balance)
    assert not suites._pair_ok(p_cap, hope)
    assert not suites._pair_ok(few, paragraphs)  # 4 paragraphs need 4 sentences
    assert suites._pair_ok(few, bullets)
    assert not suites._pair_ok(make_instruction("all_lowercase"), make_instruction("all_uppercase"))


# ---- math suite ---------------------------------------------------------------------------------


def _solve(family: str, n: list[int]) -> int:
    """The answer recomputed from the numbers in the problem text, in the order they appear."""
    return {
        "discount": lambda: n[0] - n[0] * n[1] // 100 + n[2],
        "ride": lambda: n[0] * n[1] + n[2],
        "ages": lambda: 2 * n[0] - n[1] + 2 * n[2],
        "leftover": lambda: n[0] * n[1] % n[2],
        "flour": lambda: n[1] * n[2] * 1000 // n[0],
        "wages": lambda: n[0] * n[1] * n[2] - n[3],
        "diesel": lambda: n[0] * n[2] // n[1] * n[3],
        "packs": lambda: math.ceil(n[2] / n[0]) * n[1],
        "saving": lambda: math.ceil((n[2] - n[0]) / n[1]),
        "quiz": lambda: 4 * n[3] - n[0] - n[1] - n[2],
        "lawn": lambda: n[0] * n[1] - n[2] ** 2,
        "bus": lambda: (n[0] - n[1] + n[2]) // 2 + n[3],
        "meeting": lambda: n[0] // (n[1] + n[2]),
        "prize": lambda: n[0] // (n[1] + n[2] + n[3]) * max(n[1:4]),
        "festival": lambda: (n[0] * n[1] + (n[0] - 1) * n[2]) // 60,
        "chairs": lambda: n[0] - n[1] % n[0],
    }[family]()


def test_math_answers_follow_from_the_text(math_rows):
    families = {}
    for row in math_rows:
        problem, suffix = _user(row).split("\n\n")
        assert suffix == math_suite.MATH_SUFFIX
        numbers = [int(x) for x in re.findall(r"\d+", problem)]
        family, answer = row["meta"]["family"], row["meta"]["answer"]
        assert answer == str(int(answer)) and int(answer) >= 0
        assert int(answer) == _solve(family, numbers), row["id"]
        families[family] = families.get(family, 0) + 1
    assert families == {f: math_suite.PROBLEMS_PER_FAMILY for f in math_suite.FAMILIES}


def test_math_meta_is_judged_by_the_ground_truth_verifier(math_rows):
    for row in math_rows:
        answer = int(row["meta"]["answer"])
        assert verify(row["meta"], f"Step one, then step two.\nAnswer: {answer}") is True
        assert verify(row["meta"], f"Step one, then step two.\nAnswer: {answer + 1}") is False


def test_math_texts_differ_from_the_reward_set_generator(math_rows):
    def shingles(text: str) -> set[tuple[str, ...]]:
        w = re.findall(r"\w+", text.lower())
        return {tuple(w[i : i + 4]) for i in range(len(w) - 3)}

    generated = {disjoint.normalize(math_problem(random.Random(seed))["question"]) for seed in range(3000)}
    theirs = set().union(*(shingles(q) for q in generated))
    for row in math_rows:
        prompt = disjoint.normalize(_user(row))
        problem = prompt.split(" work it out")[0]
        assert problem not in generated and prompt not in generated
        assert not any(q in prompt for q in generated)
        # Different wording, not just different numbers: no four-word run in common.
        assert not shingles(prompt) & theirs, row["id"]


# ---- disjointness -------------------------------------------------------------------------------


def test_suites_are_disjoint_from_everything_training_sees(if_rows, math_rows, sources):
    expected = {
        "seed_prompts",
        "heldout_prompts",
        "helpsteer_train",
        "helpsteer_heldout",
        "closed_qa_documents",
        "sdg_templates",
        "sdg_defaults",
        "reward_bank",
        "reward_math_problem",
    }
    assert set(sources) == expected
    assert all(len(texts) > 0 for texts in sources.values())
    report = disjoint.overlap_report(if_rows + math_rows, sources)
    assert report["eval_rows"] == len(if_rows) + len(math_rows)
    assert report["hits"] == []
    assert report["duplicate_ids"] == [] and report["duplicate_prompts"] == []


def test_base_tasks_are_disjoint_from_training_prompts(sources):
    rows = [{"id": f"t{i}", "messages": [{"role": "user", "content": t}]} for i, t in enumerate(suites.base_tasks())]
    assert disjoint.overlap_report(rows, sources)["hits"] == []


def test_the_two_files_share_no_ids_or_prompts(if_rows, math_rows):
    assert not {r["id"] for r in if_rows} & {r["id"] for r in math_rows}
    prompts = [disjoint.normalize(_user(r)) for r in if_rows + math_rows]
    assert len(set(prompts)) == len(prompts)


def test_overlap_report_finds_planted_overlaps(sources):
    def row(i, text):
        return {"id": i, "messages": [{"role": "user", "content": text}]}

    planted = [
        row("eq", "Why is the sky blue?\n\nAnswer in capital letters only."),  # reward bank
        row("in", "Please help.   EXPLAIN WHY ICE FLOATS ON WATER. Thanks!"),  # heldout prompt
        row("sub", "Reply with a numbered list"),  # inside a template
        row("dup", "A fresh request about kites."),
        row("dup", "A fresh request about kites."),
    ]
    report = disjoint.overlap_report(planted, sources)
    found = {(h["id"], h["source"], h["relation"]) for h in report["hits"]}
    assert ("eq", "reward_bank", "equal") in found
    assert ("in", "heldout_prompts", "eval_contains_source") in found
    assert ("sub", "sdg_templates", "source_contains_eval") in found
    assert not any(h["id"] == "dup" for h in report["hits"])
    assert report["duplicate_ids"] == ["dup"]
    assert report["duplicate_prompts"] == ["a fresh request about kites."]


def test_short_source_phrases_only_need_to_differ():
    rows = [{"id": "a", "messages": [{"role": "user", "content": "Describe the history of kites."}]}]
    assert disjoint.overlap_report(rows, {"topics": ["history"]})["hits"] == []
    rows.append({"id": "b", "messages": [{"role": "user", "content": "History"}]})
    hits = disjoint.overlap_report(rows, {"topics": ["history"]})["hits"]
    assert [(h["id"], h["relation"]) for h in hits] == [("b", "equal")] * len(hits) and hits
