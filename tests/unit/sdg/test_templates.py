"""Single-turn pipeline prompt builders and prompt rows."""

import hashlib

import pytest

from flywheel.errors import FlywheelError
from flywheel.sdg import defaults
from flywheel.sdg.rows import PROMPT_KINDS, make_prompt_row, prompt_id, split_for
from flywheel.sdg.templates import (
    CLOSED_QA_TEMPLATES,
    clip_document,
    closed_qa_instruction_prompt,
    closed_qa_user_prompt,
    code_problem_prompt,
    macro_topics_prompt,
    math_problem_prompt,
    questions_prompt,
    refine_question_prompt,
    refine_writing_prompt,
    subtopics_prompt,
    writing_tasks_prompt,
)


def _only_user(messages):
    assert len(messages) == 1 and messages[0]["role"] == "user"
    return messages[0]["content"]


def test_topic_and_question_builders_embed_their_inputs():
    assert "List 7 broad" in _only_user(macro_topics_prompt(7))
    text = _only_user(subtopics_prompt("  ocean life ", 4))
    assert 'List 4 distinct subtopics of "ocean life"' in text
    assert "numbered list" in text
    text = _only_user(questions_prompt("coral reefs", 3))
    assert "Write 3 different questions" in text and '"coral reefs"' in text


def test_refinement_builders_embed_the_draft():
    text = _only_user(refine_question_prompt("Why do cats purr?"))
    assert "Why do cats purr?" in text and "more detailed and specific" in text
    text = _only_user(refine_writing_prompt("Write a poem about autumn."))
    assert "Write a poem about autumn." in text and "audience" in text


def test_writing_tasks_prompt():
    text = _only_user(writing_tasks_prompt("newsletter", "gardening", 2))
    assert 'write a newsletter related to "gardening"' in text and "Write 2 different" in text


def test_math_and_code_prompts():
    text = _only_user(math_problem_prompt("fractions", "middle school"))
    assert "about fractions at the middle school level" in text and "Do not" in text
    text = _only_user(code_problem_prompt("recursion", "beginner"))
    assert "for a beginner programmer that involves recursion" in text


@pytest.mark.parametrize(
    "call",
    [
        lambda: subtopics_prompt("", 3),
        lambda: subtopics_prompt("x", 0),
        lambda: macro_topics_prompt(True),
        lambda: questions_prompt("   ", 2),
        lambda: refine_question_prompt(""),
        lambda: writing_tasks_prompt("poem", "", 1),
        lambda: math_problem_prompt("", "high school"),
        lambda: code_problem_prompt("sets", ""),
        lambda: closed_qa_instruction_prompt(""),
        lambda: closed_qa_user_prompt("doc", "q", template=99),
        lambda: clip_document("abc", 0),
    ],
)
def test_bad_builder_arguments_raise(call):
    with pytest.raises(FlywheelError):
        call()


def test_closed_qa_prompts():
    doc = "The Nile is about 6,650 km long. It flows north into the Mediterranean."
    assert doc in _only_user(closed_qa_instruction_prompt(doc))
    assert closed_qa_user_prompt(doc, "How long is the Nile?", template=0) == (doc + "\n\nHow long is the Nile?")
    assert closed_qa_user_prompt(doc, "How long is the Nile?", template=1) == ("How long is the Nile?\n\n" + doc)
    picked = closed_qa_user_prompt(doc, "Summarize the text.")
    assert picked == closed_qa_user_prompt(doc, "Summarize the text.")
    assert doc in picked and "Summarize the text." in picked
    assert len(CLOSED_QA_TEMPLATES) == 4


def test_clip_document_cuts_at_boundaries():
    assert clip_document("  short text  ", 100) == "short text"
    doc = "First sentence here. Second sentence here. Third one."
    assert clip_document(doc, 45) == "First sentence here. Second sentence here."
    assert clip_document("para one is here\n\npara two is longer", 25) == "para one is here"
    assert clip_document("abcdefghijklmnop", 5) == "abcde"


def test_defaults_are_plain_and_sized():
    assert len(defaults.DEFAULT_TOPICS) == 20
    assert "newsletter" in defaults.DEFAULT_DOC_TYPES and "poem" in defaults.DEFAULT_DOC_TYPES
    assert len(set(defaults.DEFAULT_MATH_KEYWORDS)) >= 10
    assert len(set(defaults.DEFAULT_CODE_KEYWORDS)) >= 10


def test_prompt_row_from_text():
    text = "Why is the sky blue?"
    row = make_prompt_row("open_qa", text, {"topic": "science"})
    assert row == {
        "id": hashlib.sha1(text.encode()).hexdigest()[:16],
        "messages": [{"role": "user", "content": text}],
        "kind": "open_qa",
        "split": "train",
        "meta": {"topic": "science"},
        "lineage": {},
    }
    assert row["id"] == prompt_id([{"role": "user", "content": text}])


def test_prompt_row_from_messages_and_errors():
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "More?"},
    ]
    row = make_prompt_row("two_turn", msgs, split="heldout", lineage={"round": 1})
    expected = hashlib.sha1(b'[["user","Hi"],["assistant","Hello"],["user","More?"]]').hexdigest()[:16]
    assert row["id"] == expected and row["split"] == "heldout" and row["lineage"] == {"round": 1}
    with pytest.raises(FlywheelError):
        make_prompt_row("poetry", "x")
    with pytest.raises(FlywheelError):
        make_prompt_row("open_qa", "   ")
    with pytest.raises(FlywheelError):
        make_prompt_row("two_turn", msgs[:2])
    with pytest.raises(FlywheelError):
        make_prompt_row("two_turn", [{"role": "robot", "content": "x"}])
    with pytest.raises(FlywheelError):
        make_prompt_row("open_qa", "x", split="dev")
    assert set(PROMPT_KINDS) == {
        "open_qa",
        "writing",
        "closed_qa",
        "math",
        "code",
        "if_single",
        "if_multi",
        "if_revision",
        "two_turn",
    }


def test_split_for_is_deterministic_and_bounded():
    assert split_for("abc", 0.0) == "train"
    assert split_for("abc", 1.0) == "heldout"
    ids = [f"id{i}" for i in range(400)]
    held = sum(split_for(i, 0.25) == "heldout" for i in ids)
    assert 60 < held < 140
    with pytest.raises(FlywheelError):
        split_for("abc", 1.5)
