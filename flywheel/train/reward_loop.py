"""Reward-model regression loop: the policy loop's batching, accumulation and resume, with a masked MSE.

Nemotron-4 340B (NVIDIA, 2024, sec. 3.1) trains its reward model as a linear head over the last-token
hidden state predicting the five HelpSteer2 attributes; attributes a row lacks carry no loss
(:func:`flywheel.judges.reward.masked_mse`). The engine is anything :mod:`flywheel.train.loop` accepts
(a DeepSpeed engine or :class:`flywheel.train.loop.TorchEngine`) wrapping a sequence-classification model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import islice

import torch

from flywheel.judges.reward import masked_mse
from flywheel.train.config import StageConfig
from flywheel.train.loop import StepResult, micro_batches, plan, summarize
from flywheel.train.reward_data import RewardExample, collate_reward


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
        layers = model.model.layers
        keep = {id(p) for layer in list(layers)[len(layers) - trainable_layers:] for p in layer.parameters()}
        keep |= {id(p) for p in model.model.norm.parameters()} | {id(p) for p in model.score.parameters()}
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
) -> dict:
    """Train the reward model on ``examples`` for one stage; same contract as ``flywheel.train.loop.train_stage``.

    Each rank runs a disjoint share of length-bucketed batches; ``start_step`` skips the batches of
    optimizer steps already done, so a resumed run sees the same data order.
    """
    lengths = [len(e.input_ids) for e in examples]
    _, total_steps = plan(lengths, stage, world)
    ga = stage.grad_accum
    stream = islice(micro_batches(lengths, stage, rank, world), start_step * ga, total_steps * ga)
    history: list[dict[str, float]] = []
    window: list[dict[str, float]] = []
    tokens, step = 0, start_step
    t_start = t_step = time.perf_counter()
    for micro, idx in enumerate(stream, start=start_step * ga + 1):
        batch = collate_reward([examples[i] for i in idx], pad_id)
        result = reward_step(engine, batch)
        engine.backward(result.loss)
        engine.step()
        tokens += int(batch["attention_mask"].sum())
        window.append(result.metrics)
        if micro % ga:
            continue
        step += 1
        now = time.perf_counter()
        row = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
        row.update(tokens=float(tokens), seconds=now - t_step, lr=float(engine.get_lr()[0]))
        row = reduce_mean(row)
        row["tokens"] *= world  # mean over ranks -> total
        row["tokens_per_s"] = row["tokens"] / max(row["seconds"], 1e-9)
        row["step"] = step
        history.append(row)
        if on_step is not None:
            on_step(row)
        window, tokens, t_step = [], 0, now
        if checkpoint is not None and stage.checkpoint_every and step % stage.checkpoint_every == 0 and step < total_steps:
            checkpoint(step)
    return summarize(history, "reward", total_steps, start_step, time.perf_counter() - t_start, len(examples))
