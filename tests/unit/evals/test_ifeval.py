"""IFEval-style strict/loose scoring on hand-written responses."""

from __future__ import annotations

import pytest

from flywheel.errors import FlywheelError
from flywheel.evals.ifeval import aggregate, loose_variants, score_response
from flywheel.sdg.instructions import make_instruction

LOWER = make_instruction("all_lowercase")
UPPER = make_instruction("all_uppercase")
JSON = make_instruction("json_format")
NO_COMMAS = make_instruction("no_commas")
START = make_instruction("start_phrase", {"phrase": "My answer is as follows:"})
END = make_instruction("end_phrase", {"phrase": "Hope this helps!"})
KEYWORDS = make_instruction("keywords_include", {"keywords": ["balance", "energy"]})


def test_variants_are_the_eight_ifeval_relaxations():
    out = loose_variants("*Intro*\nbody\nbye")
    assert out == [
        "*Intro*\nbody\nbye",
        "body\nbye",
        "*Intro*\nbody",
        "body",
        "Intro\nbody\nbye",
        "body\nbye",
        "Intro\nbody",
        "body",
    ]


def test_clean_response_passes_strict_and_loose():
    res = score_response("a calm lake at dawn, with no wind at all.", [LOWER])
    assert res == {
        "kinds": ["all_lowercase"],
        "strict": [True],
        "loose": [True],
        "prompt_strict": True,
        "prompt_loose": True,
    }


def test_preamble_line_fails_strict_but_passes_loose():
    response = "Sure! Here you go:\nthe river bends twice before it reaches the old mill."
    res = score_response(response, [LOWER])
    assert res["strict"] == [False] and res["loose"] == [True]
    assert res["prompt_strict"] is False and res["prompt_loose"] is True


def test_closing_remark_is_forgiven_by_dropping_the_last_line():
    response = "Stretch before you run. Hope this helps!\nWant a plan for next week too?"
    res = score_response(response, [END])
    assert (res["strict"], res["loose"]) == ([False], [True])


def test_markdown_stars_are_forgiven():
    response = "**My answer is as follows:** keep the receipts in one folder."
    res = score_response(response, [START])
    assert (res["strict"], res["loose"]) == ([False], [True])


def test_json_wrapped_in_chatter_needs_both_lines_removed():
    response = 'Here is the JSON you asked for:\n{"city": "Lisbon", "days": 3}\nEnjoy the trip.'
    res = score_response(response, [JSON])
    assert (res["strict"], res["loose"]) == ([False], [True])


def test_a_real_violation_fails_both():
    response = "Lisbon is lovely, sunny and hilly.\nGo in spring, when it is mild."
    res = score_response(response, [NO_COMMAS, KEYWORDS])
    assert res["strict"] == [False, False] and res["loose"] == [False, False]
    assert res["kinds"] == ["no_commas", "keywords_include"]


def test_per_instruction_results_keep_order_and_mix():
    response = "Intro, with a comma\nthe balance of energy matters here"
    res = score_response(response, [KEYWORDS, NO_COMMAS, UPPER])
    assert res["strict"] == [True, False, False]
    assert res["loose"] == [True, True, False]  # the comma sits on the removable first line
    assert res["prompt_strict"] is False and res["prompt_loose"] is False


def test_blank_response_follows_nothing():
    res = score_response("   ", [NO_COMMAS])
    assert res["strict"] == [False] and res["loose"] == [False]


def test_loose_is_never_below_strict():
    for response in ["a", "A\nb", "* x\n* y", '"quoted"', "{}", "plain text."]:
        res = score_response(response, [LOWER, NO_COMMAS, JSON])
        assert all(loose or not strict for strict, loose in zip(res["strict"], res["loose"]))


@pytest.mark.parametrize(
    "response, instructions",
    [
        ("ok", []),
        ("ok", "all_lowercase"),
        ("ok", [{"params": {}}]),
        ("ok", [{"kind": "no_such_kind", "params": {}}]),
        ("ok", [{"kind": "bullets", "params": {}}]),  # missing n
        (None, [LOWER]),
    ],
)
def test_score_response_rejects_bad_input(response, instructions):
    with pytest.raises(FlywheelError):
        score_response(response, instructions)


def _res(strict, loose):
    return {"kinds": [f"k{i}" for i in range(len(strict))], "strict": strict, "loose": loose}


def test_aggregate_hand_computed():
    results = [
        _res([True, False], [True, True]),
        _res([True], [True]),
        _res([False, False], [False, True]),
    ]
    out = aggregate(results)
    # prompt level: only the 2nd prompt passes strict; the 1st and 2nd pass loose.
    assert out["prompt_level_strict"] == pytest.approx(1 / 3)
    assert out["prompt_level_loose"] == pytest.approx(2 / 3)
    # instruction level: strict 2 of 5, loose 4 of 5.
    assert out["instruction_level_strict"] == pytest.approx(2 / 5)
    assert out["instruction_level_loose"] == pytest.approx(4 / 5)
    assert out["prompts"] == 3 and out["instructions"] == 5
    assert out["per_kind"]["k0"] == {"n": 3, "strict": pytest.approx(2 / 3), "loose": pytest.approx(2 / 3)}
    assert out["per_kind"]["k1"] == {"n": 2, "strict": 0.0, "loose": 1.0}


def test_aggregate_over_scored_responses():
    scored = [
        score_response("Sure:\nall quiet here", [LOWER]),  # strict F, loose T
        score_response("ALL LOUD HERE", [UPPER, NO_COMMAS]),  # T, T
        score_response("Mixed Case, here", [UPPER]),  # F, F
    ]
    out = aggregate(scored)
    assert out["prompt_level_strict"] == pytest.approx(1 / 3)
    assert out["prompt_level_loose"] == pytest.approx(2 / 3)
    assert out["instruction_level_strict"] == pytest.approx(2 / 4)
    assert out["instruction_level_loose"] == pytest.approx(3 / 4)


@pytest.mark.parametrize("results", [[], [{"kinds": ["a"]}], [_res([True], [True, False])], [_res([], [])]])
def test_aggregate_rejects_bad_input(results):
    with pytest.raises(FlywheelError):
        aggregate(results)
