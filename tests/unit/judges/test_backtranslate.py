"""Instructions read off an answer, and the instruction variants that use them."""

from __future__ import annotations

import random

import pytest

from flywheel.judges.backtranslate import DERIVABLE_KINDS, derive, join_two
from flywheel.judges.variants import draw_instructions, instruction_variants, second_answers
from flywheel.judges.verifiers import verify
from flywheel.sdg.if_prompts import if_single_prompt
from flywheel.sdg.instructions import make_instruction, verify_all, words

ANSWER = (
    "Saturn has the most known moons of any planet. Its rings are made of ice and rock, and the rings are wide. "
    "A day there lasts about ten and a half hours. The planet is less dense than water. "
    "Titan, its largest moon, has a thick atmosphere. Probes such as Cassini have studied Saturn for decades."
)
SECOND = "Saturn is the sixth planet from the Sun. It is a gas giant with bright rings of ice."
CONTENT_KINDS = [k for k in DERIVABLE_KINDS if k != "two_responses"]


@pytest.mark.parametrize("kind", CONTENT_KINDS)
def test_derived_params_are_followed_by_the_answer_they_come_from(kind):
    got = [derive(kind, ANSWER, random.Random(seed)) for seed in range(40)]
    kept = [p for p in got if p is not None]
    assert kept, f"{kind}: no parameters derived from a 60-word answer in 40 draws"
    for params in kept:
        ins = make_instruction(kind, params)  # the registry's own sentence
        assert ins["text"] and verify_all(ANSWER, [ins])[0], (kind, params)


def test_keywords_come_from_the_answer_and_counts_stay_in_the_registry_ranges():
    for seed in range(30):
        rng = random.Random(seed)
        inc = derive("keywords_include", ANSWER, rng)
        assert inc and all(k.lower() in ANSWER.lower() for k in inc["keywords"]) and len(inc["keywords"]) == 2
        freq = derive("keyword_frequency", ANSWER, rng)
        assert freq and 2 <= freq["n"] <= 4
        letter = derive("letter_frequency", ANSWER, rng)
        assert letter is None or (5 <= letter["n"] <= 15 if letter["relation"] == "at least" else 2 <= letter["n"] <= 5)


def test_a_short_answer_gives_no_minimum_length_and_a_long_one_the_largest_step_it_meets():
    assert derive("length_min_words", "Too short to count.", random.Random(0)) is None
    long = " ".join(["word"] * 230) + "."
    assert derive("length_min_words", long, random.Random(0)) == {"n": 200}
    assert len(words(long)) >= 200


def test_two_answers_are_joined_as_two_responses_asks_and_never_the_same_text_twice():
    joined = join_two(ANSWER, SECOND)
    assert joined is not None and verify({"instructions": [make_instruction("two_responses")]}, joined) is True
    assert join_two(ANSWER, ANSWER + "  ") is None
    assert join_two(ANSWER, "a\n******\nb") is None
    assert join_two(ANSWER, "") is None


def _row(pid, answer=ANSWER, reward=3.0):
    return {
        "messages": [{"role": "user", "content": "Tell me about Saturn."}, {"role": "assistant", "content": answer}],
        "reward": reward,
        "kind": "open_qa",
        "prompt_id": pid,
    }


def test_derived_variants_verify_and_pair_only_where_the_answer_was_changed():
    rows = [_row(f"p{i}") for i in range(8)]
    seconds = {f"p{i}": SECOND for i in range(8)}
    sft, pairs, counts = instruction_variants(
        rows, {}, per_row=6, seed=3, min_judged_gap=0.5, derived=True, seconds=seconds
    )
    # the draw is a function of (seed, prompt_id): replay it to know each variant's instructions
    by_prompt = {}
    for i in range(8):
        rng = random.Random(f"variants:3:p{i}")
        for _ in range(6):
            ins = draw_instructions(rng, rng.randint(1, 2), ANSWER, SECOND)
            by_prompt[if_single_prompt("Tell me about Saturn.", ins)] = ins
    kinds = set()
    for s in sft:
        ins = by_prompt[s["messages"][0]["content"]]
        kinds |= {i["kind"] for i in ins}
        assert verify({"instructions": ins}, s["messages"][1]["content"]) is True
    assert kinds & set(CONTENT_KINDS), "no content instruction was drawn in 48 variants"
    assert "two_responses" in kinds
    assert counts["variants"] == len(sft) and counts["already_passes"] == len(sft) - len(pairs) > 0
    for p in pairs:
        ins = by_prompt[p["prompt"][0]["content"]]
        assert verify({"instructions": ins}, p["rejected"][0]["content"]) is not True
        assert p["reward_chosen"] - p["reward_rejected"] >= 0.5


def test_without_derived_the_draw_is_the_repairable_kinds_only():
    from flywheel.judges.repair import FIXABLE_KINDS

    sft, pairs, counts = instruction_variants([_row("q")], {}, per_row=8, seed=1, min_judged_gap=0.5)
    assert len(sft) == len(pairs) == counts["variants"]  # every kept variant was changed by repair
    rng = random.Random("variants:1:q")
    from flywheel.sdg.if_prompts import sample_instructions

    for _ in range(8):
        assert {i["kind"] for i in sample_instructions(rng, rng.randint(1, 2), FIXABLE_KINDS)} <= set(FIXABLE_KINDS)


def test_second_answers_take_the_best_other_usable_answer():
    def scored(pid, text, reward, turns=2):
        msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]
        if turns == 4:
            msgs = msgs[:1] + msgs[1:] + msgs
        return {"prompt_id": pid, "messages": msgs, "reward": reward}

    sft = [_row("a", reward=3.0), _row("b", reward=3.0)]
    rows = [
        scored("a", ANSWER, 3.0),  # the chosen text itself
        scored("a", "I'm sorry, but I can't help with that.", 2.9),  # a refusal
        scored("a", "Second best answer about Saturn.", 2.8),
        scored("a", "Third answer about Saturn.", 2.6),
        scored("b", "Far worse answer.", 1.0),  # more than max_drop below the chosen one
        scored("c", "Not a chosen prompt.", 3.5),
    ]
    assert second_answers(rows, sft, max_drop=0.5) == {"a": "Second best answer about Saturn."}
