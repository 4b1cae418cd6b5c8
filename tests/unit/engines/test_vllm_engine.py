"""Engine dtype: ``auto`` picks bf16 only where the hardware computes it natively."""

from flywheel.engines.vllm_engine import cpu_has_bf16, resolve_dtype


def test_cpu_bf16_flags_are_read_from_cpuinfo(tmp_path):
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor : 0\nflags : fpu sse2 avx2 fma\n")
    amx = tmp_path / "amx"
    amx.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16 amx_bf16\n")
    assert cpu_has_bf16(str(avx2)) is False
    assert cpu_has_bf16(str(amx)) is True
    assert cpu_has_bf16(str(tmp_path / "missing")) is False


def test_resolve_dtype():
    assert resolve_dtype("float16", on_gpu=False) == "float16"
    assert resolve_dtype("auto", on_gpu=True) == "bfloat16"
    assert resolve_dtype("auto", on_gpu=False) == ("bfloat16" if cpu_has_bf16() else "float32")
