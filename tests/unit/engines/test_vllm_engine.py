"""Engine dtype: ``auto`` picks bf16 only where the hardware computes it natively."""

from flywheel.engines.vllm_engine import resolve_dtype
from flywheel.hardware import cpu_has_bf16


def test_resolve_dtype():
    assert resolve_dtype("float16", on_gpu=False) == "float16"
    assert resolve_dtype("auto", on_gpu=True) == "bfloat16"
    assert resolve_dtype("auto", on_gpu=False) == ("bfloat16" if cpu_has_bf16() else "float32")
