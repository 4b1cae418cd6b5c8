"""Two-turn prompts: follow-up question request, its parser, the final messages."""

import pytest

from flywheel.errors import FlywheelError
from flywheel.sdg.two_turn import followup_prompt, parse_followup, two_turn_messages


def test_followup_prompt_embeds_transcript():
    msgs = followup_prompt("What is a haiku?", "A three-line poem of 5, 7 and 5 syllables.")
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    content = msgs[0]["content"]
    transcript = "User: What is a haiku?\n\nAssistant: A three-line poem of 5, 7 and 5 syllables."
    assert transcript in content
    assert "next message" in content
    with pytest.raises(FlywheelError):
        followup_prompt("", "answer")


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Can you write one about autumn?", "Can you write one about autumn?"),
        (
            "Here is the user's next message:\n\nUser: Can you write one about autumn?",
            "Can you write one about autumn?",
        ),
        ('"Thanks! Can you write one about autumn?"', "Can you write one about autumn?"),
    ],
)
def test_parse_followup(raw, expected):
    assert parse_followup(raw) == expected


@pytest.mark.parametrize("raw", ["", "Thank you!", "?????", "x" * 5000, "I'm sorry, but no."])
def test_parse_followup_rejects(raw):
    assert parse_followup(raw) is None


def test_two_turn_messages():
    assert two_turn_messages("Q1?", "A1.", "Q2?") == [
        {"role": "user", "content": "Q1?"},
        {"role": "assistant", "content": "A1."},
        {"role": "user", "content": "Q2?"},
    ]
    with pytest.raises(FlywheelError):
        two_turn_messages("Q1?", "A1.", " ")
