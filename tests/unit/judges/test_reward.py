"""Reward aggregation, masked attribute regression loss, HelpSteer2 row targets."""

import math

import pytest
import torch

from flywheel.errors import FlywheelError
from flywheel.judges.reward import (
    ATTRIBUTES,
    DEFAULT_WEIGHTS,
    aggregate,
    aggregate_tensor,
    helpsteer_row_to_target,
    masked_mse,
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


def test_aggregate_tensor_matches_hand_values():
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0], [3.5, 4.0, 4.0, 2.0, 1.0]])
    out = aggregate_tensor(scores)
    assert out.shape == (2,)
    torch.testing.assert_close(out, torch.tensor([4.81, 6.46]))
    # explicit tensor weights: helpfulness - verbosity -> 4-0=4, 3.5-1=2.5
    w = torch.tensor([1.0, 0.0, 0.0, 0.0, -1.0])
    torch.testing.assert_close(aggregate_tensor(scores, w), torch.tensor([4.0, 2.5]))


def test_aggregate_tensor_shape_errors():
    with pytest.raises(FlywheelError):
        aggregate_tensor(torch.zeros(3, 4))
    with pytest.raises(FlywheelError):
        aggregate_tensor(torch.zeros(5))
    with pytest.raises(FlywheelError):
        aggregate_tensor(torch.zeros(2, 5), torch.zeros(4))


def test_masked_mse_mean_over_present_entries():
    pred = torch.tensor([[1.0] * 5, [2.0] * 5], requires_grad=True)
    target = torch.tensor([[0.0, 1.0, 3.0, float("nan"), 1.0], [2.0, 2.0, 2.0, 2.0, 5.0]])
    mask = torch.tensor([[1, 1, 1, 0, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)
    # present squared errors: (1-0)^2=1, (1-1)^2=0, (1-3)^2=4, (1-1)^2=0, (2-5)^2=9 -> 14 / 5 = 2.8
    loss = masked_mse(pred, target, mask)
    assert loss.item() == pytest.approx(2.8)
    loss.backward()
    # d/dpred = 2 (pred - target) / 5 on present entries, 0 elsewhere (the NaN target must not leak)
    expected = torch.tensor([[0.4, 0.0, -0.8, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, -1.2]])
    torch.testing.assert_close(pred.grad, expected)


def test_masked_mse_float_mask_equals_bool_mask():
    pred = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    target = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0]])
    # entries 1 and 5 present: (1 + 25) / 2 = 13
    assert masked_mse(pred, target, torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0]])).item() == pytest.approx(13.0)


def test_masked_mse_all_masked_is_zero_without_nan():
    pred = torch.ones(2, 5, requires_grad=True)
    target = torch.full((2, 5), float("nan"))
    loss = masked_mse(pred, target, torch.zeros(2, 5, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros(2, 5))


def test_masked_mse_shape_mismatch():
    with pytest.raises(FlywheelError):
        masked_mse(torch.zeros(2, 5), torch.zeros(2, 5), torch.ones(1, 5))


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
