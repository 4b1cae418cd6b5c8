"""The training loop shared by in-process runs (tests, benchmarks) and Ray Train workers.

The loop talks to a *model engine* (:class:`flywheel.train.engine.ModelEngine`: a DeepSpeed engine as it is,
or :class:`flywheel.train.engine.TorchEngine` over a plain model + optimizer). Collectives stay outside: the
caller passes ``reduce_mean``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

import torch

from flywheel.train import losses
from flywheel.train.config import StageConfig
from flywheel.train.data import (
    Encoded,
    PairExample,
    bucket_batches,
    collate_pairs,
    collate_sft,
    example_length,
    shard_batches,
)
from flywheel.train.engine import ModelEngine

KINDS = ("sft", "dpo", "rpo")


def plan(lengths: Sequence[int], stage: StageConfig, world: int) -> tuple[int, int]:
    """``(micro_steps_per_epoch, total_optimizer_steps)`` for one rank; identical on every rank.

    ``max_steps > 0`` wins over ``epochs``; a trailing partial accumulation window is completed with the
    next epoch's batches so every optimizer step sees ``grad_accum`` micro-batches.
    """
    n_batches = math.ceil(len(lengths) / stage.batch_size)
    per_epoch = math.ceil(n_batches / world)
    if stage.max_steps > 0:
        return per_epoch, stage.max_steps
    return per_epoch, max(1, math.ceil(stage.epochs * per_epoch / stage.grad_accum))


def micro_batches(lengths: Sequence[int], stage: StageConfig, rank: int, world: int) -> Iterator[list[int]]:
    """Endless stream of this rank's index batches: epoch ``e`` is bucketed with seed ``stage.seed + e``."""
    epoch = 0
    while True:
        yield from shard_batches(bucket_batches(lengths, stage.batch_size, stage.seed + epoch), rank, world)
        epoch += 1


@dataclass
class StepResult:
    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


def label_logits(model: Callable[..., Any], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward ``model`` keeping only the logits that predict label tokens (and what lies between them).

    On small models the LM head and the log-softmax over the vocabulary are most of a step; prompt positions
    need neither. ``logits_to_keep = k`` makes a Hugging Face causal LM compute the last ``k`` positions only,
    from the one before the batch's earliest label on.

    Returns:
        ``(logits [B, k, V], labels [B, k])``, aligned for :func:`losses.token_logps`.
    """
    labels = batch["labels"]
    t = labels.shape[1]
    has = (labels != losses.IGNORE_INDEX).any(dim=0).nonzero()
    first = int(has[0]) if len(has) else t - 1
    keep = t - max(first - 1, 0)
    out = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False, logits_to_keep=keep
    )
    return out.logits, labels[:, t - keep :]


def sft_step(engine: ModelEngine, batch: dict[str, torch.Tensor], stage: StageConfig) -> StepResult:
    """Forward one SFT micro-batch; loss = batch mean of per-example NLL (``stage.sft_reduction``)."""
    logits, labels = label_logits(engine, batch)
    nll = losses.sft_nll(logits, labels, stage.sft_reduction)
    loss = nll.mean()
    value = loss.item()
    return StepResult(loss, {"loss": value, "sft_loss": value})


def preference_step(
    engine: ModelEngine, batch: dict[str, torch.Tensor], ref: torch.Tensor, stage: StageConfig, kind: str
) -> StepResult:
    """Forward one DPO/RPO micro-batch (``[chosen; rejected]`` rows) against stored reference log-probs.

    Args:
        ref: ``[B, 2]`` reference log-probs (chosen, rejected) of the batch's pairs.

    Loss: ``mean(pref) + sft_weight * mean(NLL(chosen))`` (report section 3.4.2: the SFT term keeps the
    policy from drifting off the chosen responses while the preference term only moves their difference).
    """
    logits, labels = label_logits(engine, batch)
    tok, mask = losses.token_logps(logits, labels)
    logps = tok.sum(dim=1)
    n = ref.shape[0]
    pc, pl = logps[:n], logps[n:]
    rc, rl = ref[:, 0].to(pc.dtype), ref[:, 1].to(pc.dtype)
    margin = losses.reward_margin(pc, pl, rc, rl, stage.beta).detach()
    parts = {"reward_margin": margin.mean(), "reward_accuracy": losses.reward_accuracy(margin)}
    if kind == "dpo":
        pref = losses.dpo_loss(pc, pl, rc, rl, stage.beta)
    else:
        wc, wl = batch["reward_chosen"], batch["reward_rejected"]
        pref = losses.rpo_loss(pc, pl, rc, rl, wc, wl, stage.beta, stage.eta, stage.distance)
        gap = losses.rpo_target_gap(margin, wc, wl, stage.eta)
        parts.update(target_gap=gap.mean(), target_gap_abs=gap.abs().mean())
    sft = losses.reduce_nll(tok[:n], mask[:n], stage.sft_reduction).mean()
    pref_mean = pref.mean()
    loss = pref_mean + stage.sft_weight * sft if stage.sft_weight > 0 else pref_mean
    parts.update(loss=loss, pref_loss=pref_mean, sft_loss=sft)
    return StepResult(loss, floats(parts))


def floats(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalar tensors as floats, read from the device in one transfer (one sync per step, not one each)."""
    read = torch.stack([v.detach().float().reshape(()) for v in values.values()]).tolist()
    return dict(zip(values, read, strict=True))


def precision(autocast: bool, device: torch.device | str | None = None) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast for a forward pass (weights and optimizer stay fp32), or nothing.

    Log-softmax and the losses still run in fp32 (:mod:`flywheel.train.losses` upcasts the logits).
    """
    if not autocast:
        return contextlib.nullcontext()
    kind = torch.device(device).type if device is not None else "cpu"
    return torch.autocast(device_type=kind, dtype=torch.bfloat16)


def _to(batch: dict[str, torch.Tensor], device: torch.device | str | None) -> dict[str, torch.Tensor]:
    return batch if device is None else {k: v.to(device) for k, v in batch.items()}


def _mean_dicts(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}


def train_stage(
    engine: ModelEngine,
    kind: str,
    examples: Sequence[Encoded] | Sequence[PairExample],
    stage: StageConfig,
    pad_id: int,
    *,
    ref_logps: torch.Tensor | None = None,
    rank: int = 0,
    world: int = 1,
    start_step: int = 0,
    checkpoint: Callable[[int], None] | None = None,
    reduce_mean: Callable[[dict[str, float]], dict[str, float]] = lambda d: d,
    on_step: Callable[[dict[str, float]], None] | None = None,
    autocast: bool = False,
) -> dict[str, Any]:
    """Train ``engine`` on ``examples`` for one stage; return summary metrics and the per-step history.

    Args:
        engine: see the module docstring; built with ``grad_accum = stage.grad_accum``.
        kind: ``"sft"`` (``Encoded`` examples) or ``"dpo"``/``"rpo"`` (``PairExample``s).
        ref_logps: ``[N, 2]`` stored reference log-probs indexed by ``PairExample.index`` (DPO/RPO only).
        rank, world: this worker's data-parallel position; each rank runs a disjoint share of batches.
        start_step: optimizer steps already done (resume); the data stream skips exactly their batches.
        checkpoint: called with the step number every ``stage.checkpoint_every`` steps (not after the last).
        reduce_mean: averages a metrics dict over ranks (identity in-process).
        on_step: receives each step's reduced metrics (rank 0 may log them).
        autocast: run the forward passes under bf16 autocast (:func:`precision`).
    """
    if kind not in KINDS:
        raise ValueError(f"train_stage: kind must be one of {KINDS}, got {kind!r}")
    if kind != "sft" and ref_logps is None:
        raise ValueError("train_stage: DPO/RPO need stored reference log-probs")
    device = getattr(engine, "device", None)  # DeepSpeed engines expose theirs; a TorchEngine runs on CPU

    def step_fn(idx: list[int]) -> tuple[StepResult, int]:
        picked = [examples[i] for i in idx]
        if kind == "sft":
            batch = collate_sft(cast("list[Encoded]", picked), pad_id)
            tokens = int(batch["attention_mask"].sum())  # counted on the host: no device sync
            with precision(autocast, device):
                result = sft_step(engine, _to(batch, device), stage)
        else:
            batch = collate_pairs(cast("list[PairExample]", picked), pad_id)
            tokens = int(batch["attention_mask"].sum())
            ref = _to({"r": cast(torch.Tensor, ref_logps)[batch["index"]]}, device)["r"]  # checked: DPO/RPO have it
            with precision(autocast, device):
                result = preference_step(engine, _to(batch, device), ref, stage, kind)
        return result, tokens

    history, total_steps, seconds = run_steps(
        engine,
        [example_length(e) for e in examples],
        stage,
        step_fn,
        rank=rank,
        world=world,
        start_step=start_step,
        checkpoint=checkpoint,
        reduce_mean=reduce_mean,
        on_step=on_step,
    )
    return summarize(history, kind, total_steps, start_step, seconds, len(examples))


def run_steps(
    engine: ModelEngine,
    lengths: Sequence[int],
    stage: StageConfig,
    step_fn: Callable[[list[int]], tuple[StepResult, int]],
    *,
    rank: int,
    world: int,
    start_step: int,
    checkpoint: Callable[[int], None] | None,
    reduce_mean: Callable[[dict[str, float]], dict[str, float]],
    on_step: Callable[[dict[str, float]], None] | None,
) -> tuple[list[dict[str, float]], int, float]:
    """The optimizer loop every job shares: this rank's micro-batches -> ``step_fn`` -> backward/step.

    ``step_fn(indices)`` computes one micro-batch's loss and returns ``(StepResult, tokens)``. Every
    ``stage.grad_accum`` micro-batches make one optimizer step, whose metrics are averaged over the window
    and over ranks (``reduce_mean``), passed to ``on_step`` (with ``total``, the job's steps) and kept.
    ``start_step`` skips exactly the batches of steps already done (resume sees the same data order).
    Returns (history, total steps, seconds).
    """
    _, total_steps = plan(lengths, stage, world)
    ga = stage.grad_accum
    stream = islice(micro_batches(lengths, stage, rank, world), start_step * ga, total_steps * ga)
    history: list[dict[str, float]] = []
    window: list[dict[str, float]] = []
    tokens, step = 0, start_step
    t_start = t_step = time.perf_counter()
    for micro, idx in enumerate(stream, start=start_step * ga + 1):
        result, n_tokens = step_fn(idx)
        engine.backward(result.loss)
        engine.step()
        tokens += n_tokens
        window.append(result.metrics)
        if micro % ga:
            continue
        step += 1
        now = time.perf_counter()
        row = _mean_dicts(window)
        row.update(tokens=float(tokens), seconds=now - t_step, lr=float(engine.get_lr()[0]))
        row = reduce_mean(row)
        row["tokens"] *= world  # mean over ranks -> total
        row["tokens_per_s"] = row["tokens"] / max(row["seconds"], 1e-9)
        row["step"] = step
        history.append(row)
        if on_step is not None:
            on_step({**row, "total": total_steps})
        window, tokens, t_step = [], 0, now
        every = stage.checkpoint_every
        if checkpoint is not None and every and step % every == 0 and step < total_steps:
            checkpoint(step)
    return history, total_steps, time.perf_counter() - t_start


def summarize(
    history: list[dict[str, float]], kind: str, total_steps: int, start_step: int, seconds: float, n: int
) -> dict[str, Any]:
    """Stage metrics: last step's values, means over the last quarter of steps, throughput and the history."""
    out: dict[str, Any] = {"kind": kind, "steps": total_steps, "resumed_from_step": start_step, "examples": n}
    out["train_seconds"] = seconds
    if history:
        tail = history[-max(1, len(history) // 4) :]
        for k in tail[0]:
            if k != "step":
                out[f"{k}_tail"] = sum(r[k] for r in tail) / len(tail)
        out.update({k: v for k, v in history[-1].items() if k != "step"})
        out["tokens"] = sum(r["tokens"] for r in history)
        out["tokens_per_s"] = out["tokens"] / max(sum(r["seconds"] for r in history), 1e-9)
    out["history"] = history
    return out
