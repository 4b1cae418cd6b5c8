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


def test_allocator_env_preloads_rays_jemalloc_in_a_real_process():
    """``auto`` preloads the jemalloc Ray ships; a process started with that environment really has it mapped."""
    import os
    import subprocess
    import sys

    from flywheel.hardware import allocator_env, allocator_in_use, bundled_jemalloc

    assert allocator_env("system") == {}
    lib = bundled_jemalloc()
    assert lib is not None and os.path.isfile(lib)  # the pinned Ray ships it; a move upstream fails here
    env = allocator_env("auto", environ={})
    assert env == {"LD_PRELOAD": lib}
    assert allocator_env("jemalloc", environ={"LD_PRELOAD": "/x/libfoo.so"})["LD_PRELOAD"] == f"{lib}:/x/libfoo.so"
    probe = "from flywheel.hardware import allocator_in_use; print(allocator_in_use())"
    run = lambda extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", probe], env={**os.environ, **extra}, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert run({"LD_PRELOAD": ""}) == "system"
    assert run(env) == "jemalloc"
    assert allocator_in_use("/nonexistent/maps") == "system"
    with pytest.raises(ValueError, match="allocator must be one of"):
        allocator_env("tcmalloc")
