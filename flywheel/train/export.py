"""Final exports and resumable checkpoints on local disk.

An export is a Hugging Face directory (``config.json``, ``model.safetensors``, tokenizer files with the chat
template, ``generation_config.json``) plus ``flywheel_train.json`` (the job's fingerprint and metrics). It is
written under a temporary name beside ``out_dir`` and renamed into place, so ``out_dir`` either holds a
complete model or does not exist. Resumable checkpoints live in ``{out_dir}.ckpt/{tag}`` with a ``latest``
file naming the newest tag (DeepSpeed's own layout) and are deleted once the export is in place.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

META = "flywheel_train.json"


def checkpoint_dir(out_dir: str) -> str:
    """Where the resumable checkpoints of the job exporting to ``out_dir`` go."""
    return f"{out_dir.rstrip('/')}.ckpt"


def step_tag(step: int) -> str:
    return f"step-{step:08d}"


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path``: a reader sees the old file or the whole new one, even after a crash."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def prune_checkpoints(ckpt_dir: str, keep: str) -> None:
    """Delete every tag directory but ``keep`` (a checkpoint is only useful until the next one)."""
    if not os.path.isdir(ckpt_dir):
        return
    for name in os.listdir(ckpt_dir):
        if name.startswith("step-") and name != keep:
            shutil.rmtree(os.path.join(ckpt_dir, name), ignore_errors=True)


def read_meta(out_dir: str) -> dict[str, Any] | None:
    """``flywheel_train.json`` of a finished export, or ``None``."""
    path = os.path.join(out_dir, META)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return cast("dict[str, Any]", json.load(f))
    except (OSError, json.JSONDecodeError):
        return None


def export_hf(
    module: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str,
    meta: dict[str, Any],
    state_dict: dict[str, torch.Tensor] | None = None,
) -> str:
    """Save ``module`` (or ``state_dict`` into its architecture) and ``tokenizer`` to ``out_dir`` atomically.

    Args:
        module: a ``transformers`` ``PreTrainedModel`` (for ZeRO-3, the engine's module with partitioned
            parameters, and ``state_dict`` the consolidated weights).
        meta: JSON-serialisable job description and metrics, stored as ``flywheel_train.json``.
    """
    out_dir = out_dir.rstrip("/")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = f"{out_dir}.tmp-{uuid.uuid4().hex[:8]}"
    module.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    with open(os.path.join(tmp, META), "w") as f:
        json.dump(meta, f, indent=1, default=float)
    old = None
    if os.path.exists(out_dir):
        old = f"{out_dir}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    return out_dir
