"""What this machine computes fast, detected at run time (never one machine's best setting hard-coded)."""

from __future__ import annotations

AUTOCAST_CHOICES = ("auto", "bf16", "off")


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Does this CPU compute bf16 natively (AVX512-BF16 or AMX)? Elsewhere bf16 is emulated and slow."""
    try:
        with open(cpuinfo) as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def use_autocast(setting: str, on_gpu: bool, bf16_weights: bool = False, cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether training forwards run under bf16 autocast (fp32 master weights and optimizer state).

    ``auto``: on GPUs and on CPUs with native bf16, unless the weights themselves are bf16 (DeepSpeed's
    ``bf16``); ``bf16``: always; ``off``: never.
    """
    if setting not in AUTOCAST_CHOICES:
        raise ValueError(f"autocast must be one of {AUTOCAST_CHOICES}, got {setting!r}")
    if setting != "auto":
        return setting == "bf16"
    return not bf16_weights and (on_gpu or cpu_has_bf16(cpuinfo))


ALLOCATOR_CHOICES = ("auto", "jemalloc", "system")


def bundled_jemalloc() -> str | None:
    """The jemalloc Ray ships (``ray/core/libjemalloc.so``, the allocator of its own daemons), or None."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("ray")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "core", "libjemalloc.so")
        if os.path.isfile(path):
            return path
    return None


def allocator_env(setting: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables that give a new worker process the chosen memory allocator.

    ``system``: none (glibc malloc); ``jemalloc``: Ray's bundled jemalloc preloaded, an error where it is
    missing; ``auto``: jemalloc on Linux where Ray ships it, else none. An ``LD_PRELOAD`` already in ``environ``
    is kept after it.

    jemalloc runs with its own page decay (a ``MALLOC_CONF`` in the environment still applies): freed pages go
    back to the kernel over ~10 s, not at once as glibc's large ``mmap`` blocks do, and the training step's peak
    memory was lower than glibc's (docs/benchmarks.md). Keeping every freed page (``dirty_decay_ms:-1``) made a
    short DPO bench 1.43x faster but grew a worker past 20 GB over a demo round (fragmentation): not used.
    """
    import os
    import sys

    if setting not in ALLOCATOR_CHOICES:
        raise ValueError(f"allocator must be one of {ALLOCATOR_CHOICES}, got {setting!r}")
    if setting == "system" or (setting == "auto" and not sys.platform.startswith("linux")):
        return {}
    lib = bundled_jemalloc()
    if lib is None:
        if setting == "jemalloc":
            raise ValueError("allocator jemalloc: Ray's bundled libjemalloc.so was not found")
        return {}
    before = (environ if environ is not None else os.environ).get("LD_PRELOAD", "")
    others = [p for p in before.split(":") if p and p != lib]
    return {"LD_PRELOAD": ":".join([lib, *others])}


def allocator_in_use(maps: str = "/proc/self/maps") -> str:
    """``jemalloc`` when this process has a jemalloc library mapped, else ``system``."""
    try:
        with open(maps) as f:
            return "jemalloc" if "jemalloc" in f.read() else "system"
    except OSError:
        return "system"
