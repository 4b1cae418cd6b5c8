"""Every verifiable instruction kind: one response that passes and one that fails, by hand."""

import random

import pytest

from flywheel.errors import FlywheelError
from flywheel.sdg.instructions import (
    REGISTRY,
    compare,
    make_instruction,
    sentences,
    verify_all,
    words,
)

CASES = [
    ("length_max_words", {"n": 5}, "One two three four five.", "One two three four five six."),
    ("length_min_words", {"n": 4}, "I don't like rain today.", "Too short here."),
    ("paragraphs", {"n": 2, "sep": "***"}, "First part.\n***\nSecond part.", "First part.\n***\n\n***\nSecond part."),
    ("paragraphs", {"n": 3, "sep": "blank"}, "<<Title>>\n\nOne.\n\nTwo.\n\nThree.\n\nP.S. bye", "One.\n\nTwo."),
    ("bullets", {"n": 3}, "Intro\n* a\n* b\n- c", "* a\n* b\n***"),
    (
        "keywords_include",
        {"keywords": ["energy", "future"]},
        "Energy shapes the future.",
        "Energy matters; futures do not count.",
    ),
    ("keywords_forbidden", {"words": ["very", "nice"]}, "Everything is quite fine.", "That is VERY good."),
    (
        "keyword_frequency",
        {"keyword": "value", "relation": "at least", "n": 2},
        "Value here and value there.",
        "Value once, values twice do not count.",
    ),
    ("keyword_frequency", {"keyword": "value", "relation": "less than", "n": 2}, "Value appears once.", "value value"),
    ("all_lowercase", {}, "all of this is lowercase, 100%.", "Not all lowercase."),
    ("all_uppercase", {}, "ALL OF THIS IS LOUD!", "MOSTLY LOUD but not all"),
    (
        "capital_words_frequency",
        {"relation": "at least", "n": 2},
        "This is VERY IMPORTANT.",
        "Only I and A are single capitals, NOT enough.",
    ),
    ("capital_words_frequency", {"relation": "less than", "n": 2}, "Just ONE shout.", "TWO SHOUTS here."),
    ("json_format", {}, '```json\n{"a": [1, 2]}\n```', "{'a': 1}"),
    ("end_phrase", {"phrase": "Hope this helps!"}, "Answer text. Hope this helps!\n", "Hope this helps! And more."),
    (
        "start_phrase",
        {"phrase": "Here is my response:"},
        "  Here is my response: yes.",
        "Well. Here is my response: yes.",
    ),
    ("sections", {"n": 2}, "Section 1\nIntro text.\n## SECTION 2\nMore text.", "Section 1\nIntro text.\nSection 2\n"),
    ("title", {}, "<<A day at sea>>\nThe waves rolled.", "<< >> no real title"),
    ("no_commas", {}, "No commas here at all.", "One, two."),
    ("quotation", {}, '  "All wrapped up."  ', '"Only the start.'),
    ("placeholders", {"n": 2}, "Send it to [name] at [address].", "Send it to [name]."),
    ("postscript", {"marker": "P.S."}, "Main text.\n\nP.S. See you soon.", "Main text. PS later"),
    ("postscript", {"marker": "P.P.S."}, "Text.\nP.S. one\nP.P.S. two", "Text.\nP.S. one"),
    ("highlights", {"n": 2}, "This is *key* and **also key**.", "Only *one* highlight."),
    ("sentence_count", {"relation": "at least", "n": 3}, "One. Two! Three?", "One. Two."),
    ("sentence_count", {"relation": "less than", "n": 3}, "One. Two.", "One. Two. Three."),
    ("letter_frequency", {"letter": "e", "relation": "at least", "n": 3}, "Eee!", "Bee"),
    ("letter_frequency", {"letter": "z", "relation": "less than", "n": 2}, "Zoo", "Zig zag"),
    ("two_responses", {}, "First answer.\n******\nSecond answer.", "Same.\n******\nSame."),
]


@pytest.mark.parametrize("kind,params,good,bad", CASES)
def test_verifier_pass_and_fail(kind, params, good, bad):
    spec = REGISTRY[kind]
    assert spec.verify(good, params) is True
    assert spec.verify(bad, params) is False


def test_every_kind_has_a_hand_written_case_and_there_are_enough():
    assert len(REGISTRY) >= 20
    assert {c[0] for c in CASES} == set(REGISTRY)


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_blank_and_non_string_responses_fail(kind):
    params = REGISTRY[kind].sample(random.Random(3))
    assert REGISTRY[kind].verify("", params) is False
    assert REGISTRY[kind].verify("   \n", params) is False
    assert REGISTRY[kind].verify(None, params) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_sampled_params_describe_and_survive_odd_responses(kind):
    spec = REGISTRY[kind]
    params = spec.sample(random.Random(11))
    text = spec.describe(params)
    assert isinstance(text, str) and len(text) > 15
    for odd in ("ünïcödé ✓ 漢字", "[" * 5000 + "]" * 5000, "word " * 50000, "*" * 1000):
        assert spec.verify(odd, params) in (True, False)


def test_json_format_edge_cases():
    spec = REGISTRY["json_format"]
    assert spec.verify("[1, 2, 3]", {}) is True
    assert spec.verify("42", {}) is False
    assert spec.verify("[" * 100000, {}) is False


def test_helpers():
    assert words("Don't stop-now, ok?") == ["Don't", "stop", "now", "ok"]
    assert sentences("Hi there. How are you?  Fine!") == ["Hi there.", "How are you?", "Fine!"]
    assert compare(3, "at least", 3) and not compare(3, "less than", 3)
    with pytest.raises(FlywheelError):
        compare(1, "about", 1)


def test_make_instruction_and_verify_all():
    ins = [
        make_instruction("no_commas"),
        make_instruction("length_max_words", {"n": 3}),
    ]
    assert ins[1]["text"] == "Answer with at most 3 words."
    assert verify_all("Yes it is", ins) == (True, {"no_commas": True, "length_max_words": True})
    assert verify_all("Yes, it is", ins) == (False, {"no_commas": False, "length_max_words": True})
    assert verify_all("", ins)[0] is False
    assert verify_all("anything", []) == (True, {})
    assert verify_all("", []) == (False, {})


def test_verify_all_bad_records_raise():
    with pytest.raises(FlywheelError):
        verify_all("x", [{"kind": "telepathy", "params": {}}])
    with pytest.raises(FlywheelError):
        verify_all("x", [{"params": {}}])
    with pytest.raises(FlywheelError):
        verify_all("x", [{"kind": "length_max_words", "params": {}}])
    with pytest.raises(FlywheelError):
        make_instruction("telepathy")
