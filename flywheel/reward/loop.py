"""Reward-model regression loop: the policy loop's batching, accumulation and resume, with a masked MSE.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.1) trains its reward model as a linear head over the last-token
hidden state predicting the five HelpSteer2 attributes; attributes a row lacks carry no loss
(:func:`flywheel.reward.losses.masked_mse`). The engine is anything :mod:`flywheel.train.loop` accepts
(a DeepSpeed engine or :class:`flywheel.train.engine.TorchEngine`) wrapping a sequence-classification model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from flywheel.reward.data import RewardExample, collate_reward
from flywheel.reward.losses import masked_mse
from flywheel.train.config import StageConfig
from flywheel.train.loop import StepResult, precision, run_steps, summarize


def freeze_lower_layers(model: torch.nn.Module, trainable_layers: int) -> int:
    """Train only the top ``trainable_layers`` decoder layers, the final norm and the head.

    On a small CPU budget most of a step is the backward pass; freezing the lower layers cuts it while the
    top layers still adapt the features to the regression head. ``trainable_layers < 0`` trains everything.

    Args:
        model: a ``*ForSequenceClassification`` with ``model.model.layers`` (Llama layout).

    Returns:
        Number of trainable parameters.
    """
    if trainable_layers >= 0:
        layers: Any = model.model.layers  # type: ignore[union-attr]
        keep = {id(p) for layer in list(layers)[len(layers) - trainable_layers :] for p in layer.parameters()}
        keep |= {id(p) for p in model.model.norm.parameters()} | {id(p) for p in model.score.parameters()}  # type: ignore[union-attr]
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def reward_step(engine, batch: dict[str, torch.Tensor]) -> StepResult:
    """Forward one micro-batch; loss = masked MSE of the ``[B, 5]`` head outputs against the labels.

    Metrics: ``loss`` and ``mae`` (mean absolute error over labelled entries, in attribute points).
    """
    pred = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    pred = pred.float()
    loss = masked_mse(pred, batch["target"], batch["mask"])
    with torch.no_grad():
        present = batch["mask"].float()
        mae = ((pred - batch["target"]).abs() * present).sum() / present.sum().clamp(min=1)
    return StepResult(loss, {"loss": loss.item(), "mae": mae.item()})


def train_reward(
    engine,
    examples: Sequence[RewardExample],
    stage: StageConfig,
    pad_id: int,
    *,
    rank: int = 0,
    world: int = 1,
    start_step: int = 0,
    checkpoint: Callable[[int], None] | None = None,
    reduce_mean: Callable[[dict[str, float]], dict[str, float]] = lambda d: d,
    on_step: Callable[[dict[str, float]], None] | None = None,
    autocast: bool = False,
) -> dict:
    """Train the reward model on ``examples`` for one stage; same contract as ``flywheel.train.loop.train_stage``.

    Each rank runs a disjoint share of length-bucketed batches; ``start_step`` skips the batches of
    optimizer steps already done, so a resumed run sees the same data order.
    """
    device = getattr(engine, "device", None)

    def step_fn(idx: list[int]) -> tuple[StepResult, int]:
        batch = collate_reward([examples[i] for i in idx], pad_id)
        if device is not None:
            batch = {k: v.to(device) for k, v in batch.items()}
        with precision(autocast, device):
            result = reward_step(engine, batch)
        return result, int(batch["attention_mask"].sum())

    history, total_steps, seconds = run_steps(
        engine,
        [len(e.input_ids) for e in examples],
        stage,
        step_fn,
        rank=rank,
        world=world,
        start_step=start_step,
        checkpoint=checkpoint,
        reduce_mean=reduce_mean,
        on_step=on_step,
    )
    return summarize(history, "reward", total_steps, start_step, seconds, len(examples))
