"""Engine dtype: ``auto`` picks bf16 only where the hardware computes it natively; the prefix-caching knob."""

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
