"""Hardware detection: bf16 is used only where this machine computes it natively."""

import pytest

from flywheel.hardware import cpu_has_bf16, use_autocast


@pytest.fixture
def cpuinfo(tmp_path):
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor : 0\nflags : fpu sse2 avx2 fma\n")
    amx = tmp_path / "amx"
    amx.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16 amx_bf16\n")
    return {"avx2": str(avx2), "amx": str(amx), "missing": str(tmp_path / "missing")}


def test_cpu_bf16_flags_are_read_from_cpuinfo(cpuinfo):
    assert cpu_has_bf16(cpuinfo["avx2"]) is False
    assert cpu_has_bf16(cpuinfo["amx"]) is True
    assert cpu_has_bf16(cpuinfo["missing"]) is False


def test_autocast_auto_follows_the_hardware(cpuinfo):
    assert use_autocast("auto", on_gpu=False, cpuinfo=cpuinfo["avx2"]) is False
    assert use_autocast("auto", on_gpu=False, cpuinfo=cpuinfo["amx"]) is True
    assert use_autocast("auto", on_gpu=True, cpuinfo=cpuinfo["avx2"]) is True
    # bf16 weights (DeepSpeed's own bf16) need no autocast on top
    assert use_autocast("auto", on_gpu=True, bf16_weights=True, cpuinfo=cpuinfo["amx"]) is False
    assert use_autocast("bf16", on_gpu=False, cpuinfo=cpuinfo["avx2"]) is True
    assert use_autocast("off", on_gpu=True, cpuinfo=cpuinfo["amx"]) is False
    with pytest.raises(ValueError, match="autocast must be one of"):
        use_autocast("fp8", on_gpu=False)
