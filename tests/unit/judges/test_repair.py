"""Verifier-guided repair: one hand-written failing response per fixable kind, its expected repair, and the refusals."""

import pytest

from flywheel.judges.repair import FIXABLE_KINDS, answer_line, attempt_repair, repair, unsolved
from flywheel.judges.verifiers import verify
from flywheel.sdg.instructions import REGISTRY, make_instruction


def meta(*instructions, **extra):
    """A prompt meta with ``(kind, params)`` instructions."""
    return {"instructions": [make_instruction(kind, params) for kind, params in instructions], **extra}


# (kind, params, failing response, expected repair)
CASES = [
    ("all_lowercase", {}, "Paris is the Capital.", "paris is the capital."),
    ("all_uppercase", {}, "Paris is the capital.", "PARIS IS THE CAPITAL."),
    (
        "end_phrase",
        {"phrase": "Hope this helps!"},
        "Paris is the capital.",
        "Paris is the capital.\nHope this helps!",
    ),
    (
        "start_phrase",
        {"phrase": "Here is my response:"},
        "Paris is the capital.",
        "Here is my response:\nParis is the capital.",
    ),
    (
        "json_format",
        {},
        'Paris is the "capital".\nIt is big.',
        '{"response": "Paris is the \\"capital\\".\\nIt is big."}',
    ),
    ("quotation", {}, "Paris is the capital.", '"Paris is the capital."'),
    (
        "no_commas",
        {},
        "Paris, the capital,\nhas 2,100,000 people,and more.",
        "Paris the capital\nhas 2100000 people and more.",
    ),
    ("postscript", {"marker": "P.S."}, "Paris is the capital.", "Paris is the capital.\n\nP.S. Thanks for reading."),
    (
        "postscript",
        {"marker": "P.P.S."},
        "Paris is the capital.",
        "Paris is the capital.\n\nP.P.S. Thanks for reading.",
    ),
    (
        "title",
        {},
        "## The capital of France, in short\n\nIt is Paris.",
        "<<The capital of France in short>>\n## The capital of France, in short\n\nIt is Paris.",
    ),
    (
        "sections",
        {"n": 2},
        "History first.\n\n\nThen geography.",
        "Section 1\nHistory first.\n\nSection 2\nThen geography.",
    ),
    (
        "sections",
        {"n": 2},
        "History first. Then geography. Then food.",
        "Section 1\nHistory first. Then geography.\n\nSection 2\nThen food.",
    ),
    (
        "paragraphs",
        {"n": 2, "sep": "***"},
        "Paris is old. It is big.\nIt has a river.",
        "Paris is old. It is big.\n***\nIt has a river.",
    ),
    ("paragraphs", {"n": 3, "sep": "blank"}, "One. Two. Three.", "One.\n\nTwo.\n\nThree."),
    ("bullets", {"n": 2}, "Paris is old. It is big. It has a river.", "* Paris is old. It is big.\n* It has a river."),
    (
        "highlights",
        {"n": 2},
        "Paris is old. It is *big*. It has a river.",
        "*Paris is old.* It is *big*. *It has a river.*",
    ),
    ("length_max_words", {"n": 7}, "Paris is old. It is big. It has a river.", "Paris is old. It is big."),
    (
        "sentence_count",
        {"relation": "less than", "n": 3},
        "Paris is old.\n\nIt is big. It has a river. And a tower.",
        "Paris is old.\n\nIt is big.",
    ),
    (
        "keywords_forbidden",
        {"words": ["actually", "really"]},
        "Actually, Paris is really old. I like it really.",
        "Paris is old. I like it.",
    ),
    ("keywords_forbidden", {"words": ["thing", "nice"]}, "A Nice thing: Paris.", "A Pleasant item: Paris."),
    (
        "capital_words_frequency",
        {"relation": "at least", "n": 3},
        "The OLD capital of France is Paris.",
        "The OLD CAPITAL of FRANCE is Paris.",
    ),
    ("capital_words_frequency", {"relation": "less than", "n": 2}, "NASA and ESA met.", "NASA and Esa met."),
    (
        "placeholders",
        {"n": 2},
        "Dear reader, Paris is old.",
        "Dear reader, Paris is old.\nWritten by [name] on [date].",
    ),
    ("placeholders", {"n": 2}, "Dear [reader], Paris is old.", "Dear [reader], Paris is old.\nWritten by [name]."),
    # only the missing words are listed
    (
        "keywords_include",
        {"keywords": ["river", "bridge"]},
        "Paris has a River.",
        "Paris has a River.\nKeywords: bridge.",
    ),
    (
        "keywords_include",
        {"keywords": ["river", "bridge"]},
        "Paris is old.",
        "Paris is old.\nKeywords: river, bridge.",
    ),
]


@pytest.mark.parametrize("kind, params, response, expected", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_fixable_kind(kind, params, response, expected):
    m = meta((kind, params))
    assert verify(m, response) is False
    assert repair(response, m) == expected
    assert verify(m, expected) is True


def test_fixable_kinds_are_registry_kinds():
    assert set(FIXABLE_KINDS) <= set(REGISTRY)
    # fixes never add content: two answers, letters, words to reach a length or a count are not made up
    # (keywords_include is listed on a line of its own, never worked into the answer's sentences)
    content = {"two_responses", "keyword_frequency", "letter_frequency", "length_min_words"}
    assert content.isdisjoint(FIXABLE_KINDS)


def test_what_cannot_be_fixed_is_named():
    text = "Paris is really old. It is big."
    # a text is never lengthened, a word outside the swap table is not replaced
    assert attempt_repair(text, meta(("sentence_count", {"relation": "at least", "n": 5}))) == (
        None,
        "unfixable/sentence_count",
    )
    assert attempt_repair(text, meta(("keywords_forbidden", {"words": ["old", "really"]}))) == (
        None,
        "unfixable/keywords_forbidden",
    )
    # too few words to write in capitals; more placeholders than the sign-off has fields
    assert attempt_repair("Go on.", meta(("capital_words_frequency", {"relation": "at least", "n": 2})))[1] == (
        "unfixable/capital_words_frequency"
    )
    assert attempt_repair(text, meta(("placeholders", {"n": 9}))) == (None, "unfixable/placeholders")


def test_sentence_budget_leaves_room_for_the_lines_other_fixes_add():
    m = meta(
        ("sentence_count", {"relation": "less than", "n": 4}),
        ("placeholders", {"n": 1}),
        ("end_phrase", {"phrase": "Hope this helps!"}),
    )
    response = "Paris is old. It is big. It has a river. It has a tower."
    # two lines are added (the sign-off and the end phrase), so one sentence of the answer stays
    assert repair(response, m) == "Paris is old.\nWritten by [name].\nHope this helps!"
    # a count that already passes is kept whole when nothing is added
    assert repair("Paris is old. It is big.", meta(("sentence_count", {"relation": "less than", "n": 4}))) == (
        "Paris is old. It is big."
    )


def test_capitals_never_touch_a_required_phrase():
    m = meta(
        ("capital_words_frequency", {"relation": "at least", "n": 2}),
        ("start_phrase", {"phrase": "Here is my response:"}),
        ("end_phrase", {"phrase": "That is all for now."}),
    )
    out = repair("Paris is the capital of France.", m)
    assert out == "Here is my response:\nParis is the CAPITAL of FRANCE.\nThat is all for now."


def test_math_answer_stated_nowhere_in_final_form_gets_the_line():
    response = "Each box holds 6, so 7 boxes hold 42 apples; that is 6 more than 36."
    # the last number (36) is read as the final answer, so the response fails
    assert verify({"answer": "42"}, response) is False
    assert answer_line(response, "42") == ("The answer is 42.", None)
    assert repair(response, {"answer": "42"}) == response + "\nThe answer is 42."
    # a full reference solution is reduced to its final answer; thousands separators are dropped
    assert answer_line("It costs 1,000 dollars, not 900.", "So the total is\n#### 1000") == (
        "The answer is 1000.",
        None,
    )
    assert repair("It costs 1,000 dollars, not 900.", {"answer": "#### 1000", "math_backend": "builtin"}) == (
        "It costs 1,000 dollars, not 900.\nThe answer is 1000."
    )


def test_math_answer_is_never_made_up():
    # the right number is nowhere in the response
    assert attempt_repair("Each box holds 6, so 7 boxes hold 41.", {"answer": "42"}) == (None, "math_answer_absent")
    # a stated wrong final answer is not overruled, even if the right number appears earlier
    for response in ("42 would be wrong; the answer is 40.", "Not 42 but \\boxed{40}.", "42?\n#### 40"):
        assert attempt_repair(response, {"answer": "42"}) == (None, "math_answer_stated")


def test_several_fixes_keep_each_other_valid():
    m = meta(
        ("all_lowercase", {}),
        ("no_commas", {}),
        ("title", {}),
        ("postscript", {"marker": "P.S."}),
        ("quotation", {}),
        ("paragraphs", {"n": 2, "sep": "blank"}),
    )
    response = "Paris, the capital.\n\nIt is old."
    assert (
        repair(response, m) == '"<<paris the capital>>\nparis the capital.\n\nit is old.\n\np.s. thanks for reading."'
    )
    m = meta(
        ("start_phrase", {"phrase": "Here is my response:"}),
        ("title", {}),
        ("end_phrase", {"phrase": "Hope this helps!"}),
        ("postscript", {"marker": "P.S."}),
        ("paragraphs", {"n": 1, "sep": "blank"}),
    )
    # the start phrase already in place stays first; the end phrase stays last, after the postscript
    assert repair("Here is my response: Paris.", m) == (
        "Here is my response:\n<<Paris>>\nParis.\n\nP.S. Thanks for reading.\nHope this helps!"
    )

    # the keywords line lands before the postscript and the end phrase; commas and case follow the other rules
    m = meta(
        ("keywords_include", {"keywords": ["river", "bridge"]}),
        ("no_commas", {}),
        ("postscript", {"marker": "P.S."}),
        ("end_phrase", {"phrase": "Hope this helps!"}),
    )
    assert repair("Paris is old, and big.", m) == (
        "Paris is old and big.\nKeywords: river bridge.\n\nP.S. Thanks for reading.\nHope this helps!"
    )
    upper = meta(("keywords_include", {"keywords": ["river"]}), ("all_uppercase", {}))
    assert repair("Paris is old.", upper) == "PARIS IS OLD.\nKEYWORDS: RIVER."


def test_math_and_instructions_together():
    m = meta(("all_uppercase", {}), ("no_commas", {}), answer="1042")
    response = "There are 1,042 apples, 6 more than 36."
    assert repair(response, m) == "THERE ARE 1042 APPLES 6 MORE THAN 36.\nTHE ANSWER IS 1042."
    m = meta(("json_format", {}), answer="42")
    fixed = repair("So 42 apples, 6 more than 36.", m)
    assert fixed == '{"response": "So 42 apples, 6 more than 36.\\nThe answer is 42."}' and verify(m, fixed) is True


@pytest.mark.parametrize(
    "response, m, reason",
    [
        ("Paris is the capital.", meta(("bullets", {"n": 2})), "unfixable/bullets"),
        ("Paris is the capital.", meta(("two_responses", {})), "unfixable/two_responses"),
        (
            "Paris is the capital.",
            meta(("all_lowercase", {}), ("length_min_words", {"n": 50})),
            "unfixable/length_min_words",
        ),
        ("One paragraph only.", meta(("sections", {"n": 2})), "unfixable/sections"),
        ("One sentence only.", meta(("bullets", {"n": 2})), "unfixable/bullets"),
        ("* one\n* two\n* three", meta(("bullets", {"n": 2})), "unfixable/bullets"),
        ("A long first sentence is here. Short.", meta(("length_max_words", {"n": 3})), "unfixable/length_max_words"),
        ("...", meta(("title", {})), "unfixable/title"),
        # contradictory: an all-lowercase response cannot start with a capitalised phrase
        ("Paris.", meta(("all_lowercase", {}), ("start_phrase", {"phrase": "Here is my response:"})), "still_failing"),
        # JSON cannot end with a phrase
        ("Paris.", meta(("json_format", {}), ("end_phrase", {"phrase": "Hope this helps!"})), "still_failing"),
        # the appended end phrase pushes the response over its word limit
        (
            "One two three.",
            meta(("end_phrase", {"phrase": "That is all for now."}), ("length_max_words", {"n": 5})),
            "still_failing",
        ),
        ("Paris.", None, "no_verifier"),
        ("Paris.", {"instructions": []}, "no_verifier"),
        ("Paris.", {"instructions": [{"kind": "no_such_kind"}]}, "bad_meta"),
        ("Paris.", {"instructions": [{"kind": "end_phrase", "params": {}}]}, "bad_meta"),
        ("   ", meta(("all_lowercase", {})), "empty_response"),
    ],
)
def test_unrepairable_cases_return_none(response, m, reason):
    assert attempt_repair(response, m) == (None, reason)
    assert repair(response, m) is None


def test_a_passing_response_is_returned_as_it_is():
    m = meta(("all_lowercase", {}))
    assert attempt_repair("paris.", m) == ("paris.", None)


def test_unsolved_means_a_verifier_no_sample_passes_or_can_be_repaired_to_pass():
    words = meta(("keyword_frequency", {"keyword": "river", "relation": "at least", "n": 2}))
    assert unsolved(words, ["Paris is old.", "It is big."]) is True  # content: no repair
    assert unsolved(words, ["Paris is old.", "A river, then another river."]) is False  # one sample passes
    upper = meta(("all_uppercase", {}))
    assert unsolved(upper, ["Paris is old."]) is False  # repairable
    assert unsolved({"answer": "42"}, ["It is 41.", "The answer is 40."]) is True
    assert unsolved({"answer": "42"}, ["6 times 7 is 42"]) is False
    # no verifier: nothing to retry for
    assert unsolved({}, ["anything"]) is False and unsolved(None, ["anything"]) is False
    assert unsolved(upper, []) is True


def test_two_responses_joins_a_second_response_then_fixes_the_rest():
    two = meta(("two_responses", {}))
    # one text cannot be two responses; another sample to the same prompt can be joined to it
    assert attempt_repair("Paris is the capital.", two) == (None, "unfixable/two_responses")
    assert attempt_repair("Paris is the capital.", two, "Paris.") == ("Paris is the capital.\n******\nParis.", None)
    assert attempt_repair("Paris.", two, " Paris. ") == (None, "unfixable/two_responses")  # the same text twice
    both = meta(("two_responses", {}), ("all_lowercase", {}))
    text, reason = attempt_repair("Paris is the Capital.", both, "It is Paris.")
    assert reason is None and text == "paris is the capital.\n******\nit is paris."
    assert verify(both, text) is True
    # a fix that keeps one response only is caught by the final check
    cut = meta(("two_responses", {}), ("sentence_count", {"relation": "less than", "n": 2}))
    assert attempt_repair("Paris is old. It is big.", cut, "It is Paris. Yes.")[0] is None
    # the separator stays on its own line: no regrouping of the joined text
    listed = meta(("two_responses", {}), ("bullets", {"n": 2}))
    assert attempt_repair("Paris is old. It is big.", listed, "It is Paris.") == (None, "unfixable/bullets")
    # a response that needs no second one ignores it
    assert attempt_repair("paris.", meta(("all_lowercase", {})), "other") == ("paris.", None)


def test_unsolved_counts_two_different_samples_as_a_two_responses_repair():
    two = meta(("two_responses", {}))
    assert unsolved(two, ["Paris.", "It is Paris."]) is False
    assert unsolved(two, ["Paris.", "Paris."]) is True  # nothing different to join
    assert unsolved(two, ["Paris."]) is True
