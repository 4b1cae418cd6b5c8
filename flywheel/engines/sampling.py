"""Top-p (nucleus) masking without sorting the vocabulary: the mask vLLM's CPU sampler computes, cheaper.

vLLM's PyTorch sampler (its CPU path) sorts every row of the logits, ``[batch, vocab]``, at every decode step
once any request in the batch uses top-p. On 2 CPU cores at 128 sequences a request that made sampled decoding
(temperature 0.8, top-p 0.95) 2.2x slower than temperature alone (docs/benchmarks.md). A row's nucleus is its
few most probable tokens: take the ``candidates`` most probable with ``topk``; when the last of them already
falls outside the nucleus, the nucleus lies among them and masking every other token gives the sorted
result (up to float rounding at the nucleus edge). Rows whose nucleus is wider take the full sort.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Mask = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sorted_nucleus(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The reference: sort each row, drop the least probable tokens whose cumulative mass is <= ``1 - p``."""
    logits_sort, idx = logits.sort(dim=-1, descending=False)
    cum = logits_sort.softmax(dim=-1).cumsum(dim=-1)
    drop = cum <= 1 - p.unsqueeze(1)
    drop[:, -1] = False  # the most probable token always stays
    return logits.scatter(-1, idx, logits_sort.masked_fill(drop, float("-inf")))


def nucleus_mask(
    logits: torch.Tensor, p: torch.Tensor, candidates: int = 256, wide: Mask = sorted_nucleus
) -> torch.Tensor:
    """``logits`` ``[B, V]`` with every token outside its row's top-``p`` nucleus set to ``-inf``.

    A token stays when the probability mass of the tokens more probable than it is below ``p`` (the most
    probable token always stays). Rows with ``p >= 1`` are returned as they are; rows whose nucleus may reach
    past the ``candidates`` most probable tokens go through ``wide`` (a full sort by default).
    """
    n, vocab = logits.shape
    k = min(candidates, vocab)
    probs = logits.float().softmax(dim=-1)
    top, idx = probs.topk(k, dim=-1)  # descending
    before = top.cumsum(dim=-1) - top  # mass of the more probable candidates
    keep = before < p.unsqueeze(1).to(before.dtype)
    keep[:, 0] = True
    out = torch.full_like(logits, float("-inf"))
    out.scatter_(-1, idx, logits.gather(-1, idx).masked_fill(~keep, float("-inf")))
    whole = p >= 1
    out[whole] = logits[whole]
    spill = keep[:, -1] & ~whole if k < vocab else torch.zeros(n, dtype=torch.bool, device=logits.device)
    if bool(spill.any()):
        out[spill] = wide(logits[spill], p[spill])
    return out
