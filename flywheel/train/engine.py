"""The optimizer side of training: the model-engine protocol the loop talks to, and its plain-torch engine.

A *model engine* is anything callable like the model that also has ``backward(loss)``, ``step()``,
``get_lr()``, ``save_checkpoint(dir, tag, client_state)`` and ``load_checkpoint(dir, tag)``. A DeepSpeed engine
is one as it is; :class:`TorchEngine` gives a plain model + optimizer the same micro-step semantics
(``backward`` scales by ``1 / grad_accum``; ``step`` updates only on the last micro-step of an accumulation
window). The optimizer (AdamW, no decay on biases and norms) and the LR schedule are built here for both.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from flywheel.train.config import StageConfig


class ModelEngine(Protocol):
    """What the loop needs of a model engine (see the module docstring): a DeepSpeed engine or a TorchEngine."""

    def __call__(self, **inputs: Any) -> Any: ...
    def backward(self, loss: torch.Tensor) -> object: ...
    def step(self) -> object: ...
    def get_lr(self) -> Sequence[float]: ...
    def save_checkpoint(self, save_dir: str, tag: str, client_state: dict[str, Any]) -> object: ...
    def load_checkpoint(self, load_dir: str, tag: str | None = None) -> tuple[str | None, dict[str, Any] | None]: ...


def lr_lambda(total_steps: int, warmup_steps: int, schedule: str) -> Callable[[int], float]:
    """Multiplier of the peak lr after ``step`` optimizer steps: linear warmup, then constant/linear/cosine."""

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; biases and norm gains (1-d parameters) are not decayed.

    torch's fused AdamW (one kernel over all tensors) where every parameter is a floating tensor on a CPU or
    CUDA device: on SmolLM2-135M it steps in 0.10 s against 0.41 s for the multi-tensor one on a 2-core CPU
    (docs/benchmarks.md). ZeRO-3 parameters are empty placeholders after partitioning; their full shape is
    ``ds_shape``.
    """
    params = [p for p in model.parameters() if p.requires_grad]

    def ndim(p: torch.Tensor) -> int:
        return len(getattr(p, "ds_shape", p.shape))

    decay = [p for p in params if ndim(p) >= 2]
    rest = [p for p in params if ndim(p) < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=fused or None)


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, stage: StageConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = math.ceil(stage.warmup_ratio * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total_steps, warmup, stage.lr_schedule))


@dataclass
class TorchEngine:
    """A plain model + optimizer behaving like a DeepSpeed engine for the loop."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    micro_steps: int = 0

    def __call__(self, **inputs: Any) -> Any:
        return self.module(**inputs)

    def backward(self, loss: torch.Tensor) -> None:
        (loss / self.grad_accum).backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated

    def step(self) -> None:
        self.micro_steps += 1
        if self.micro_steps % self.grad_accum:
            return
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.max_grad_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def get_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def save_checkpoint(self, save_dir: str, tag: str, client_state: dict[str, Any]) -> None:
        os.makedirs(os.path.join(save_dir, tag), exist_ok=True)
        state = {
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "micro_steps": self.micro_steps,
            "client_state": client_state,
        }
        tmp = os.path.join(save_dir, tag, "state.pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, os.path.join(save_dir, tag, "state.pt"))
        with open(os.path.join(save_dir, "latest.tmp"), "w") as f:
            f.write(tag)
        os.replace(os.path.join(save_dir, "latest.tmp"), os.path.join(save_dir, "latest"))

    def load_checkpoint(self, load_dir: str, tag: str | None = None) -> tuple[str | None, dict[str, Any] | None]:
        if tag is None:
            latest = os.path.join(load_dir, "latest")
            if not os.path.isfile(latest):
                return None, None
            with open(latest) as f:
                tag = f.read().strip()
        path = os.path.join(load_dir, tag, "state.pt")
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.micro_steps = state["micro_steps"]
        return path, state["client_state"]
