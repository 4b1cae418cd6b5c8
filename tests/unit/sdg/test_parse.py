"""Parsers for generator replies: lists and single prompts, including malformed output."""

import pytest

from flywheel.sdg.parse import parse_list, parse_single, strip_think


def test_numbered_list_with_prose_around():
    text = (
        "Sure! Here are 4 subtopics of renewable energy:\n\n"
        "1. Solar panels\n"
        "2) Wind turbines\n"
        "3. **Geothermal heating**\n"
        "4. Tidal power,\n\n"
        "Let me know if you want more!"
    )
    assert parse_list(text, 10) == ["Solar panels", "Wind turbines", "Geothermal heating", "Tidal power"]


def test_bullets_and_duplicates_and_max_items():
    text = "- Alpha topic\n* alpha topic!\n• Beta topic\n\n- Gamma topic\n- Delta topic"
    assert parse_list(text, 3) == ["Alpha topic", "Beta topic", "Gamma topic"]


def test_json_array_and_object():
    assert parse_list('Here you go: ["cats", "dogs", "cats", 42]', 5) == ["cats", "dogs", "42"]
    assert parse_list('{"subtopics": ["a b", "c d"]}', 5) == ["a b", "c d"]
    assert parse_list('[{"question": "Why is the sky blue?"}]', 5) == ["Why is the sky blue?"]


def test_plain_lines_skip_intro_and_outro():
    text = 'Here are some ideas:\nBaking bread\n"Sourdough starters"\nI hope this helps.'
    assert parse_list(text, 5) == ["Baking bread", "Sourdough starters"]


def test_overly_long_and_tiny_items_dropped():
    long_item = "x" * 300
    text = f"1. {long_item}\n2. ok item\n3. a\n4. !!!"
    assert parse_list(text, 5) == ["ok item"]


def test_unicode_items_kept():
    assert parse_list("1. Café culture\n2. 日本の歴史\n3. Ölmalerei", 5) == ["Café culture", "日本の歴史", "Ölmalerei"]


@pytest.mark.parametrize("text", ["", "   \n\n", "!!! ??? ...", "[[[[", "1.\n2.\n-"])
def test_list_garbage_gives_nothing(text):
    assert parse_list(text, 5) == []


def test_list_broken_json_falls_back_to_lines():
    assert parse_list('["a b", "c d"', 5) == ['["a b", "c d"']
    assert parse_list('1. ["x"\n2. second', 5) == ['["x"', "second"]


def test_list_huge_input_is_bounded():
    text = "\n".join(f"{i}. item number {i}" for i in range(1, 20001))
    items = parse_list(text, 7)
    assert items == [f"item number {i}" for i in range(1, 8)]
    assert parse_list("[" * 100000, 3) == []


def test_list_non_string_and_zero_items():
    assert parse_list(None, 3) == []  # type: ignore[arg-type]
    assert parse_list("1. a thing", 0) == []


def test_single_strips_lead_in_label_and_quotes():
    text = 'Sure! Here is a more detailed question:\n\n**Revised question:** "How do tides work near the equator?"'
    assert parse_single(text) == "How do tides work near the equator?"
    assert parse_single("Question: What causes rainbows?") == "What causes rainbows?"
    assert parse_single("Here's the task: Write a poem about rain.") == "Write a poem about rain."


def test_single_takes_first_paragraph_only_by_default():
    text = "What is the capital of Peru and why?\n\nI hope this question works for you."
    assert parse_single(text) == "What is the capital of Peru and why?"
    text2 = "First paragraph of the task here.\n\nSecond paragraph with detail."
    assert parse_single(text2) == "First paragraph of the task here."


def test_single_multi_paragraph_stops_at_solution():
    text = (
        "Problem: A train travels 60 km in 1.5 hours.\n\n"
        "What is its average speed in km/h?\n\n"
        "Solution: 60 / 1.5 = 40 km/h."
    )
    assert parse_single(text, max_paragraphs=5) == (
        "A train travels 60 km in 1.5 hours.\n\nWhat is its average speed in km/h?"
    )


def test_single_rejects_short_long_empty_refusal():
    assert parse_single("") is None
    assert parse_single("   \n ") is None
    assert parse_single("Why?") is None
    assert parse_single("a" * 3000) is None
    assert parse_single("I'm sorry, but I cannot write that question.") is None
    assert parse_single('""') is None
    assert parse_single(None) is None  # type: ignore[arg-type]


def test_single_think_block_removed():
    assert strip_think("<think>plan</think>Answer") == "Answer"
    assert strip_think("Answer<think>unfinished") == "Answer"
    assert parse_single("<think>hmm let me see</think>How do bees make honey?") == ("How do bees make honey?")


def test_single_unicode_and_huge():
    assert parse_single("¿Cómo funciona la fotosíntesis en las plantas?") == (
        "¿Cómo funciona la fotosíntesis en las plantas?"
    )
    huge = ("word " * 200000).strip()
    assert parse_single(huge) is None


def test_single_from_a_list_keeps_the_first_item():
    text = "1. How do volcanoes form under the sea?\n2. Why do they erupt?\n3. Where?"
    assert parse_single(text) == "How do volcanoes form under the sea?"
    assert parse_single("- Write a limerick about a cat.") == "Write a limerick about a cat."
    problem = "- Ann has 3 apples.\n- Bob has 4 apples.\n\nHow many apples do they have together?"
    assert parse_single(problem, max_paragraphs=4) == problem
