"""The AdamW every engine trains with: decay groups, and torch's fused kernel wherever it applies."""

from __future__ import annotations

import torch

from flywheel.train.engine import build_optimizer


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 4))


def test_matrices_decay_and_vectors_do_not():
    opt = build_optimizer(_model(), lr=1e-3, weight_decay=0.1)
    decay, rest = opt.param_groups
    assert all(p.ndim == 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert all(p.ndim == 1 for p in rest["params"]) and rest["weight_decay"] == 0.0


def test_cpu_parameters_get_the_fused_kernel_with_the_same_updates():
    fused_model, plain_model = _model(), _model()
    fused = build_optimizer(fused_model, lr=1e-2, weight_decay=0.1)
    assert fused.defaults["fused"] is True
    groups = [
        {"params": g["params"], "weight_decay": g["weight_decay"]}
        for g in build_optimizer(plain_model, 1e-2, 0.1).param_groups
    ]
    plain = torch.optim.AdamW(groups, lr=1e-2, foreach=True)
    x = torch.randn(32, 8)
    for _ in range(5):
        for model, opt in ((fused_model, fused), (plain_model, plain)):
            model(x).pow(2).mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    for a, b in zip(fused_model.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(fused_model[0].weight, _model()[0].weight)  # the steps moved the weights
