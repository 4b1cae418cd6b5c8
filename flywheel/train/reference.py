"""Reference log-probs for DPO/RPO: one forward-only pass per dataset, stored, then read while training.

Recomputing ``log pi_ref`` every step costs a second forward per step (about a quarter of a DPO step on CPU);
the reference never changes during a stage, so it is computed once and cached in a safetensors file
(``logps`` ``[N, 2]``: chosen, rejected) whose metadata holds a fingerprint of the reference weights and the
tokenized pairs. A cache with another fingerprint is recomputed, never reused.
"""

from __future__ import annotations

import glob
import hashlib
import os
import uuid
from collections.abc import Sequence
from typing import cast

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from flywheel.train import losses
from flywheel.train.data import PairExample, collate_pairs, example_length
from flywheel.train.loop import label_logits, precision

_EDGE = 1 << 20  # bytes hashed at each end of a weight file


def model_fingerprint(model_dir: str) -> str:
    """Cheap identity of an HF model directory: config plus size, head and tail of each weight file.

    The safetensors header (tensor names, offsets) sits at the head; any retraining changes the bytes that
    follow it, so head + tail + size tell checkpoints apart without reading gigabytes.
    """
    h = hashlib.sha256()
    cfg = os.path.join(model_dir, "config.json")
    if os.path.isfile(cfg):
        with open(cfg, "rb") as f:
            h.update(f.read())
    weights = glob.glob(os.path.join(model_dir, "*.safetensors")) + glob.glob(os.path.join(model_dir, "*.bin"))
    for path in sorted(weights):
        size = os.path.getsize(path)
        h.update(f"{os.path.basename(path)}:{size}".encode())
        with open(path, "rb") as f:
            h.update(f.read(_EDGE))
            f.seek(max(0, size - _EDGE))
            h.update(f.read(_EDGE))
    return h.hexdigest()[:16]


def pairs_fingerprint(examples: Sequence[PairExample]) -> str:
    """Identity of tokenized pairs (token ids and labels of both sides, in order)."""
    h = hashlib.sha256()
    for e in examples:
        for enc in (e.chosen, e.rejected):
            h.update(repr((enc.input_ids, enc.labels)).encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def compute_ref_logps(
    model: torch.nn.Module, examples: Sequence[PairExample], batch_size: int, pad_id: int, autocast: bool = False
) -> torch.Tensor:
    """Forward-only pass of the reference ``model`` over ``examples``; returns ``[len(examples), 2]``.

    ``autocast`` must match the training step's, so that the policy starts exactly at the reference.

    Row ``i`` holds (chosen, rejected) summed log-probs of ``examples[i]``. Pairs run in length order to
    keep padding low; the result is put back in input order.
    """
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: example_length(examples[i]))
    out = torch.zeros(len(examples), 2, dtype=torch.float32)
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        batch = {k: v.to(device) for k, v in collate_pairs([examples[i] for i in idx], pad_id).items()}
        with precision(autocast, device):
            logits, labels = label_logits(model, batch)  # the same positions and kernels as the training step
        logps = losses.sequence_logps(logits, labels).float().cpu()
        n = len(idx)
        out[idx, 0] = logps[:n]
        out[idx, 1] = logps[n:]
    return out


def save_ref_logps(path: str, logps: torch.Tensor, fingerprint: str) -> None:
    """Write the cache atomically (temp file + rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    save_file({"logps": logps.contiguous()}, tmp, metadata={"fingerprint": fingerprint, "rows": str(len(logps))})
    os.replace(tmp, path)


def load_ref_logps(path: str, fingerprint: str) -> torch.Tensor | None:
    """The cached ``[N, 2]`` log-probs, or ``None`` when missing or made for other weights or data."""
    if not os.path.isfile(path):
        return None
    try:
        with safe_open(path, framework="pt") as f:
            if (f.metadata() or {}).get("fingerprint") != fingerprint:
                return None
            return cast(torch.Tensor, f.get_tensor("logps"))
    except Exception:  # a torn or foreign file is a cache miss, not an error
        return None


def merge_shards(parts: Sequence[tuple[list[int], torch.Tensor]], n: int) -> torch.Tensor:
    """Reassemble per-rank results ``(indices, [len(indices), 2])`` into ``[n, 2]``."""
    out = torch.zeros(n, 2, dtype=torch.float32)
    for idx, vals in parts:
        if idx:
            out[torch.tensor(idx)] = vals
    return out
