"""Instruction sampling without contradictions and the three instruction-following prompt shapes."""

import random

import pytest

from flywheel.errors import FlywheelError
from flywheel.sdg.if_prompts import (
    CONFLICTS,
    compatible,
    describe_all,
    if_multi_messages,
    if_revision_messages,
    if_single_prompt,
    sample_instructions,
)
from flywheel.sdg.instructions import REGISTRY, make_instruction, verify_all


def test_conflict_table_names_only_known_kinds():
    for pair in CONFLICTS:
        assert len(pair) == 2 and pair <= set(REGISTRY)
    assert not compatible("all_lowercase", "all_uppercase")
    assert not compatible("all_uppercase", "all_lowercase")
    assert not compatible("json_format", "bullets")
    assert not compatible("title", "title")
    assert compatible("no_commas", "title")


def test_sampler_is_seeded_and_never_contradictory():
    first = sample_instructions(random.Random(5), 3)
    assert first == sample_instructions(random.Random(5), 3)
    rng = random.Random(0)
    for _ in range(300):
        picked = sample_instructions(rng, 4)
        kinds = [p["kind"] for p in picked]
        assert len(picked) == 4 and len(set(kinds)) == 4
        for i, a in enumerate(kinds):
            for b in kinds[i + 1 :]:
                assert compatible(a, b), (a, b)
        for p in picked:
            assert p["text"] == REGISTRY[p["kind"]].describe(p["params"])


def test_sampler_respects_kinds_and_returns_fewer_when_forced():
    picked = sample_instructions(random.Random(1), 5, kinds=["all_lowercase", "all_uppercase"])
    assert len(picked) == 1 and picked[0]["kind"] in {"all_lowercase", "all_uppercase"}
    picked = sample_instructions(random.Random(1), 2, kinds=["no_commas", "title", "bullets"])
    assert {p["kind"] for p in picked} <= {"no_commas", "title", "bullets"} and len(picked) == 2
    with pytest.raises(FlywheelError):
        sample_instructions(random.Random(1), 2, kinds=["mind_reading"])


def test_single_turn_prompt():
    ins = [make_instruction("no_commas"), make_instruction("title")]
    assert if_single_prompt(" Describe a lighthouse. ", ins) == (
        "Describe a lighthouse.\n\nDo not use a single comma anywhere in your response. "
        "Give your response a title wrapped in double angle brackets, like <<a day at sea>>."
    )
    with pytest.raises(FlywheelError):
        if_single_prompt("Describe a lighthouse.", [])
    with pytest.raises(FlywheelError):
        if_single_prompt("", ins)


def test_multi_turn_prompt_carries_instruction_in_first_turn_only():
    ins = [make_instruction("all_lowercase")]
    msgs = if_multi_messages(["What is rain?", "And snow?"], ins, answers=["water falling."])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[0]["content"].startswith("For this and every later question")
    assert msgs[0]["content"].endswith("\n\nWhat is rain?")
    assert "lowercase" in msgs[0]["content"]
    assert msgs[2]["content"] == "And snow?"
    assert if_multi_messages(["Only one?"], ins)[0]["content"].endswith("Only one?")
    with pytest.raises(FlywheelError):
        if_multi_messages(["a?", "b?"], ins, answers=[])
    with pytest.raises(FlywheelError):
        if_multi_messages([], ins)


def test_revision_prompt():
    ins = [make_instruction("length_max_words", {"n": 20})]
    msgs = if_revision_messages("Explain tides.", "Tides come from the moon, mostly.", ins)
    assert msgs == [
        {"role": "user", "content": "Explain tides."},
        {"role": "assistant", "content": "Tides come from the moon, mostly."},
        {
            "role": "user",
            "content": "Rewrite your answer so that it follows these instructions: Answer with at most 20 words.",
        },
    ]
    with pytest.raises(FlywheelError):
        if_revision_messages("Explain tides.", "  ", ins)


def test_sampled_instructions_are_verifiable_end_to_end():
    ins = [make_instruction("all_lowercase"), make_instruction("no_commas")]
    assert describe_all(ins).count(".") == 2
    assert verify_all("tides follow the moon", ins)[0] is True
    assert verify_all("Tides follow the moon, mostly", ins) == (False, {"all_lowercase": False, "no_commas": False})
