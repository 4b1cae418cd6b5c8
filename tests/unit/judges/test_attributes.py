"""Reward aggregation and HelpSteer2 row targets."""

import math

import pytest

from flywheel.errors import FlywheelError
from flywheel.judges.attributes import (
    ATTRIBUTES,
    DEFAULT_WEIGHTS,
    aggregate,
    helpsteer_row_to_target,
    weight_vector,
)


def test_attributes_and_model_card_weights():
    assert ATTRIBUTES == ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    assert weight_vector() == (0.3, 0.74, 0.46, 0.47, -0.33)
    assert DEFAULT_WEIGHTS["verbosity"] == -0.33


def test_aggregate_dict_by_hand():
    # 0.3*4 + 0.74*3 + 0.46*2 + 0.47*1 - 0.33*0 = 1.2 + 2.22 + 0.92 + 0.47 + 0 = 4.81
    scores = {"helpfulness": 4, "correctness": 3, "coherence": 2, "complexity": 1, "verbosity": 0}
    assert aggregate(scores) == pytest.approx(4.81)


def test_aggregate_list_ignores_extra_dict_keys():
    # 0.3*3.5 + 0.74*4 + 0.46*4 + 0.47*2 - 0.33*1 = 1.05 + 2.96 + 1.84 + 0.94 - 0.33 = 6.46
    assert aggregate([3.5, 4.0, 4.0, 2.0, 1.0]) == pytest.approx(6.46)
    scores = dict(zip(ATTRIBUTES, [3.5, 4.0, 4.0, 2.0, 1.0]), extra_head=100.0)
    assert aggregate(scores) == pytest.approx(6.46)


def test_aggregate_custom_weights():
    # only helpfulness (weight 2) and verbosity (weight -1): 2*3 - 1*4 = 2
    weights = {"helpfulness": 2.0, "correctness": 0.0, "coherence": 0.0, "complexity": 0.0, "verbosity": -1.0}
    assert aggregate([3, 9, 9, 9, 4], weights) == pytest.approx(2.0)
    assert aggregate([3, 9, 9, 9, 4], [2.0, 0, 0, 0, -1.0]) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "scores, weights",
    [
        ({"helpfulness": 1, "correctness": 1, "coherence": 1, "complexity": 1}, None),  # verbosity missing
        ({"helpfulness": 1, "correctness": None, "coherence": 1, "complexity": 1, "verbosity": 1}, None),
        ([1, 2, 3], None),
        ([1, 2, 3, 4, float("nan")], None),
        ([1, 2, 3, 4, 5], {"helpfulness": 1.0}),
        ([1, 2, 3, 4, 5], dict(DEFAULT_WEIGHTS, length=1.0)),
        ([1, 2, 3, 4, 5], [1.0, 2.0]),
    ],
)
def test_aggregate_rejects_bad_input(scores, weights):
    with pytest.raises(FlywheelError):
        aggregate(scores, weights)


def test_helpsteer_row_top_level_with_missing_and_none():
    row = {"prompt": "p", "response": "r", "helpfulness": 3, "correctness": None, "coherence": 4, "verbosity": 1}
    values, mask = helpsteer_row_to_target(row)
    assert values == [3.0, 0.0, 4.0, 0.0, 1.0]
    assert mask == [True, False, True, False, True]


def test_helpsteer_row_nested_scores_and_nan():
    row = {"scores": {"helpfulness": 2.5, "correctness": 3, "coherence": float("nan"), "complexity": 0, "verbosity": 4}}
    values, mask = helpsteer_row_to_target(row)
    assert values == [2.5, 3.0, 0.0, 0.0, 4.0]
    assert mask == [True, True, False, True, True]
    assert not any(math.isnan(v) for v in values)


def test_helpsteer_row_rejects_non_numbers():
    with pytest.raises(FlywheelError, match="helpfulness"):
        helpsteer_row_to_target({"helpfulness": "high"})
