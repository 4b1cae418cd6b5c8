"""Persona role-play prompts (roles flipped) and user-turn post-processing."""

import pytest

from flywheel.errors import FlywheelError
from flywheel.sdg.dialogue import (
    PERSONAS,
    clean_user_turn,
    flip_roles,
    persona_by_name,
    select_personas,
    user_turn_prompt,
)

DIALOGUE = [
    {"role": "system", "content": "Be helpful."},
    {"role": "user", "content": "How do I start running?"},
    {"role": "assistant", "content": "Begin with short, easy runs three times a week."},
]


def test_personas_shipped_and_selectable():
    assert len(PERSONAS) >= 10
    assert len({p["name"] for p in PERSONAS}) == len(PERSONAS)
    assert persona_by_name("skeptic")["name"] == "skeptic"
    assert select_personas([]) == list(PERSONAS)
    assert [p["name"] for p in select_personas(["teacher", "parent"])] == ["teacher", "parent"]
    with pytest.raises(FlywheelError):
        persona_by_name("pirate")


def test_flip_roles_swaps_and_drops_system():
    assert flip_roles(DIALOGUE) == [
        {"role": "assistant", "content": "How do I start running?"},
        {"role": "user", "content": "Begin with short, easy runs three times a week."},
    ]


def test_user_turn_prompt_flips_roles_and_alternates():
    msgs = user_turn_prompt(DIALOGUE, persona_by_name("skeptic"))
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert "skeptical reader" in msgs[0]["content"]
    assert msgs[2]["content"] == "How do I start running?"
    assert msgs[3]["content"] == "Begin with short, easy runs three times a week."


def test_user_turn_prompt_rejects_bad_dialogues():
    with pytest.raises(FlywheelError):
        user_turn_prompt(DIALOGUE[:2], PERSONAS[0])
    with pytest.raises(FlywheelError):
        user_turn_prompt([], PERSONAS[0])
    with pytest.raises(FlywheelError):
        user_turn_prompt(DIALOGUE, {"name": "x"})


@pytest.mark.parametrize(
    "raw,expected",
    [
        (
            "Thank you for the tips! How many minutes should a first run last?",
            "How many minutes should a first run last?",
        ),
        ("User: What shoes should I buy?", "What shoes should I buy?"),
        ('**User:** "What shoes should I buy?"', "What shoes should I buy?"),
        ("Sure, I'd be happy to help. What pace is too fast for a beginner?", "What pace is too fast for a beginner?"),
        ("Great question! Thanks, but how do I avoid shin splints?", "How do I avoid shin splints?"),
        ("What about running in the rain?\nAssistant: Running in rain is fine.", "What about running in the rain?"),
        ("Okay so what should I eat before a run?", "Okay so what should I eat before a run?"),
        ("Can you fix this?\n```\nprint('hi')  # Thanks!\n```", "Can you fix this?\n```\nprint('hi')  # Thanks!\n```"),
        ("¿Y si corro por la mañana sin desayunar?", "¿Y si corro por la mañana sin desayunar?"),
    ],
)
def test_clean_user_turn_keeps_the_request(raw, expected):
    assert clean_user_turn(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "Thank you so much! That was really helpful.",
        "User:",
        "!!!",
        "I'm sorry, but I can't pretend to be a user.",
        "<think>planning the question</think>",
        None,
    ],
)
def test_clean_user_turn_rejects_empty_or_filler(raw):
    assert clean_user_turn(raw) is None


def test_clean_user_turn_huge_input():
    huge = "Why is that? " * 20000
    out = clean_user_turn(huge)
    assert out is not None and out.startswith("Why is that?")
