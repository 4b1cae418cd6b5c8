"""Engine dtype: ``auto`` picks bf16 only where the hardware computes it natively; the prefix-caching and top-p knobs."""

import dataclasses

import pytest

from flywheel.config import load_config
from flywheel.engines.vllm_engine import _llm_kwargs, engine_spec, resolve_dtype
from flywheel.errors import FlywheelError
from flywheel.hardware import cpu_has_bf16


def test_resolve_dtype():
    assert resolve_dtype("float16", on_gpu=False) == "float16"
    assert resolve_dtype("auto", on_gpu=True) == "bfloat16"
    assert resolve_dtype("auto", on_gpu=False) == ("bfloat16" if cpu_has_bf16() else "float32")


@pytest.mark.parametrize("value", [None, True, False])
def test_prefix_caching_reaches_chat_engines_only(value):
    cfg = load_config(None, [f"engine.prefix_caching={'null' if value is None else str(value).lower()}"])
    spec = engine_spec("/m", cfg.engine, seed=0)
    assert spec.prefix_caching is value
    chat, pooling = _llm_kwargs(spec, "generate"), _llm_kwargs(spec, "pooling")
    assert "enable_prefix_caching" not in pooling
    if value is None:
        assert "enable_prefix_caching" not in chat  # vLLM's own default for the model and device
    else:
        assert chat["enable_prefix_caching"] is value
        # the key is one vLLM's engine arguments know (a rename upstream fails here, not in a round)
        from vllm.engine.arg_utils import EngineArgs

        assert set(chat) <= {f.name for f in dataclasses.fields(EngineArgs)}


def test_prefix_caching_rejects_a_non_boolean():
    with pytest.raises(FlywheelError, match="prefix_caching"):
        load_config(None, ["engine.prefix_caching=maybe"])


def test_engine_and_train_allocators_are_checked():
    for key in ("engine.allocator", "train.allocator"):
        with pytest.raises(FlywheelError, match=key.replace(".", r"\.")):
            load_config(None, [f"{key}=tcmalloc"])
        assert load_config(None, [f"{key}=system"])


@pytest.mark.parametrize("value", [True, False])
def test_fast_top_p_reaches_the_engine_spec(value):
    cfg = load_config(None, [f"engine.fast_top_p={str(value).lower()}"])
    assert engine_spec("/m", cfg.engine, seed=0).fast_top_p is value


PATCHED = """
import torch
from vllm.v1.sample.ops import topk_topp_sampler as ops
from flywheel.engines.vllm_engine import patch_top_p

original = ops.apply_top_k_top_p
assert patch_top_p() and patch_top_p()  # idempotent
assert ops.apply_top_k_top_p is not original and ops.apply_top_k_top_p.flywheel_nucleus
g = torch.Generator().manual_seed(0)
logits = torch.randn(32, 49152, generator=g) * 4
p = torch.full((32,), 0.9)
ours = ops.apply_top_k_top_p(logits.clone(), None, p)
theirs = ops.apply_top_k_top_p_pytorch(logits.clone(), None, p, allow_cpu_sync=True)
assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs))
k = torch.full((32,), 5)  # top-k requests keep vLLM's own path
assert torch.equal(ops.apply_top_k_top_p(logits.clone(), k, p), original(logits.clone(), k, p))
print("ok")
"""


def test_patch_top_p_swaps_vllms_cpu_mask_for_the_same_mask():
    import subprocess
    import sys

    # a fresh interpreter: the patch changes the vllm module of the process it runs in
    out = subprocess.run([sys.executable, "-c", PATCHED], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
