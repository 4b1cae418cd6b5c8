"""Reward-model regression losses over tensors (pure torch: no devices, no distributed calls).

Nemotron-4 340B (NVIDIA, 2024, sec. 3.1) regresses the five HelpSteer2 attributes; the scalar reward is
their weighted sum (:func:`flywheel.judges.attributes.aggregate` for one record, :func:`aggregate_tensor`
for a batch).
"""

from __future__ import annotations

import torch

from flywheel.errors import FlywheelError
from flywheel.judges.attributes import ATTRIBUTES, WeightsLike, weight_vector


def aggregate_tensor(scores: torch.Tensor, weights: torch.Tensor | WeightsLike = None) -> torch.Tensor:
    """Batched weighted reward.

    Args:
        scores: ``[batch, 5]`` attribute predictions in ``ATTRIBUTES`` order.
        weights: ``[5]`` tensor, or anything ``weight_vector`` accepts.

    Returns:
        ``[batch]`` rewards, in the dtype and on the device of ``scores``.

    Raises:
        FlywheelError: ``scores`` is not ``[batch, 5]`` or ``weights`` is not ``[5]``.
    """
    if scores.dim() != 2 or scores.shape[-1] != len(ATTRIBUTES):
        raise FlywheelError(f"aggregate_tensor: scores must be [batch, {len(ATTRIBUTES)}], got {list(scores.shape)}")
    if isinstance(weights, torch.Tensor):
        if weights.shape != (len(ATTRIBUTES),):
            raise FlywheelError(f"aggregate_tensor: weights must be [{len(ATTRIBUTES)}], got {list(weights.shape)}")
        w = weights.to(dtype=scores.dtype, device=scores.device)
    else:
        w = torch.tensor(weight_vector(weights), dtype=scores.dtype, device=scores.device)
    return scores @ w


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the attributes that have a label.

    HelpSteer-style data often lacks some attributes for some rows; those entries carry no loss.
    The mean is over present entries only, so a batch with few labels is not down-weighted.

    Args:
        pred: ``[batch, 5]`` predicted attributes.
        target: ``[batch, 5]`` labels; values where ``mask`` is False are ignored (may be NaN).
        mask: ``[batch, 5]`` bool (or 0/1) marking present labels.

    Returns:
        Scalar tensor. With no present entry it is 0 (still connected to ``pred``, so backward works
        and yields zero gradients instead of NaN).

    Raises:
        FlywheelError: the three shapes differ.
    """
    if pred.shape != target.shape or pred.shape != mask.shape:
        raise FlywheelError(
            f"masked_mse: shapes differ: pred {list(pred.shape)}, target {list(target.shape)}, mask {list(mask.shape)}"
        )
    present = mask.to(torch.bool)
    # Replace masked targets before subtracting: a NaN there would otherwise reach the gradient
    # through (pred - target) even after the product with a zero mask.
    clean_target = torch.where(present, target.to(pred.dtype), torch.zeros_like(pred))
    squared = (pred - clean_target).pow(2) * present.to(pred.dtype)
    count = present.sum().clamp(min=1).to(pred.dtype)
    return squared.sum() / count
