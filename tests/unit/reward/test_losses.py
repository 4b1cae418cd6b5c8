"""Reward-model losses: batched weighted reward and the masked attribute regression loss."""

import pytest
import torch

from flywheel.errors import FlywheelError
from flywheel.reward.losses import aggregate_tensor, masked_mse


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
