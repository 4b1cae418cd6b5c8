"""The sort-free top-p mask gives vLLM's own sorted mask (its PyTorch sampler path) on real-shaped logits."""

from __future__ import annotations

import pytest
import torch

from flywheel.engines.sampling import nucleus_mask, sorted_nucleus


def _vllm_mask(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    from vllm.v1.sample.ops.topk_topp_sampler import apply_top_k_top_p_pytorch

    return apply_top_k_top_p_pytorch(logits.clone(), None, p, allow_cpu_sync=True)


def _logits(rows: int, vocab: int, scale: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=g) * scale


@pytest.mark.parametrize("scale", [0.5, 3.0, 8.0])  # flat rows (wide nuclei, the fallback) to peaked ones
def test_the_mask_equals_vllms_sorted_mask(scale):
    logits = _logits(64, 49152, scale, seed=int(scale * 10))
    p = torch.full((64,), 0.95)
    p[::4] = 0.5
    p[1::8] = 1.0  # a request without top-p in a batch with top-p
    ours, ref = nucleus_mask(logits, p), _vllm_mask(logits, p)
    kept, ref_kept = torch.isfinite(ours), torch.isfinite(ref)
    assert torch.equal(kept, ref_kept)
    assert torch.equal(ours[kept], logits[kept])  # kept tokens keep their logits


def test_few_candidates_fall_back_to_the_sort_and_still_agree():
    logits = _logits(16, 4096, 0.5, seed=1)  # flat: the 95% nucleus spans thousands of tokens
    p = torch.full((16,), 0.95)
    calls = []

    def wide(lg, pp):
        calls.append(len(lg))
        return sorted_nucleus(lg, pp)

    ours = nucleus_mask(logits, p, candidates=8, wide=wide)
    assert calls == [16]
    assert torch.equal(torch.isfinite(ours), torch.isfinite(_vllm_mask(logits, p)))


def test_a_peaked_row_keeps_just_its_nucleus():
    logits = torch.full((1, 1000), -20.0)
    logits[0, 7], logits[0, 3], logits[0, 5] = 5.0, 4.0, 0.0  # probs ~0.73, 0.27, 0.005
    ours = nucleus_mask(logits, torch.tensor([0.95]))
    assert torch.isfinite(ours[0]).nonzero().flatten().tolist() == [3, 7]
    ours = nucleus_mask(logits, torch.tensor([0.5]))
    assert torch.isfinite(ours[0]).nonzero().flatten().tolist() == [7]
