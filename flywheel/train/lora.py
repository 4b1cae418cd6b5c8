"""Low-rank adapters (peft) for policy training, merged into the base weights at export.

With ``train.lora.enabled`` every policy job (SFT, DPO, RPO) trains only the adapters on the target
modules; the export is a plain Hugging Face directory (adapters merged, no peft keys) that transformers and
vLLM load like a fully fine-tuned checkpoint. Reference log-probs come from the reference directory as usual.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch

from flywheel.errors import FlywheelError


class _Mergeable(Protocol):
    """A peft-wrapped model: folds its adapters into the base weights and returns the base model."""

    def merge_and_unload(self) -> torch.nn.Module: ...


def apply_lora(model: torch.nn.Module, cfg: Any) -> torch.nn.Module:
    """Wrap ``model`` with LoRA adapters per ``cfg`` (a :class:`flywheel.train.config.LoraConfig`).

    Raises:
        FlywheelError: peft is missing, or no target module matched (names the modules it looked for).
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise FlywheelError("train.lora.enabled needs the peft package (pip install peft)") from None
    targets = list(cfg.target_modules)
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    if not names & set(targets):
        raise FlywheelError(f"train.lora.target_modules: none of {targets} is a module of {type(model).__name__}")
    peft_cfg = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_cfg)


def merged(module: torch.nn.Module) -> torch.nn.Module:
    """The plain transformers model to export: adapters folded into the weights when ``module`` has them."""
    if hasattr(module, "merge_and_unload"):
        return cast(_Mergeable, module).merge_and_unload()
    return module


def trainable_parameters(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    return sum(p.numel() for p in module.parameters() if p.requires_grad), total
