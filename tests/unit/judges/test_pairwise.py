"""LLM-as-judge prompt, verdict parsing, and the both-orders agreement rule."""

import pytest

from flywheel.errors import FlywheelError
from flywheel.judges.pairwise import combine_both_orders, disagreement_reason, judge_prompt, parse_verdict

QUESTION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
]


def test_judge_prompt_layout():
    messages = judge_prompt(QUESTION, "It is 4.", {"role": "assistant", "content": "Five."})
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "[[A]]" in messages[0]["content"] and "[[TIE]]" in messages[0]["content"]
    body = messages[1]["content"]
    # conversation first, then A, then B
    assert body.index("What is 2+2?") < body.index("## Response A") < body.index("It is 4.")
    assert body.index("It is 4.") < body.index("## Response B") < body.index("Five.")
    assert "### System\nBe brief." in body


def test_judge_prompt_swapped_order_swaps_answers():
    ab = judge_prompt(QUESTION, "first", "second")[1]["content"]
    ba = judge_prompt(QUESTION, "second", "first")[1]["content"]
    assert ab.index("first") < ab.index("second")
    assert ba.index("second") < ba.index("first")


@pytest.mark.parametrize(
    "question, answer",
    [
        ([], "x"),
        ([{"role": "assistant", "content": "hi"}], "x"),
        ([{"role": "user", "content": None}], "x"),
        ([{"role": "narrator", "content": "hi"}], "x"),
        (QUESTION, 42),
    ],
)
def test_judge_prompt_bad_input(question, answer):
    with pytest.raises(FlywheelError):
        judge_prompt(question, answer, "y")


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("A is more accurate.\n[[A]]", "A"),
        ("B covers everything. [[B]]", "B"),
        ("Both equally fine. [[TIE]]", "tie"),
        ("[[ tie ]]", "tie"),
        ("[[b]]", "B"),
        ("I must answer [[A]], [[B]] or [[TIE]]. After comparing: [[B]]", "B"),
        ("Final verdict: A", "A"),
        ("Verdict: **B**", "B"),
        ("Response A is better.", None),
        ("[[C]]", None),
        ("", None),
        (None, None),
        (12, None),
        ("\x00\x01 garbage [[", None),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


# order 1 shows (first, second) as (A, B); order 2 shows (second, first) as (A, B)
@pytest.mark.parametrize(
    "ab, ba, winner, reason",
    [
        ("A", "B", "first", None),  # both orders pick the first response
        ("B", "A", "second", None),  # both orders pick the second response
        ("A", "A", None, "position_bias"),  # position A won twice
        ("B", "B", None, "position_bias"),
        ("tie", "tie", None, "tie"),
        ("A", "tie", None, "tie"),
        ("tie", "B", None, "tie"),
        (None, "B", None, "unparsed"),
        ("A", None, None, "unparsed"),
        (None, None, None, "unparsed"),
    ],
)
def test_combine_both_orders(ab, ba, winner, reason):
    assert combine_both_orders(ab, ba) == winner
    assert disagreement_reason(ab, ba) == reason
