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
