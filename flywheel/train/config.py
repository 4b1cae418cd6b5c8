"""Training configuration: one :class:`StageConfig` per stage, gathered in :class:`TrainConfig`.

The defaults suit small models on CPU (the ``local`` profile: SmolLM2-135M). The Nemotron-4 340B report's
values live in ``configs/paper.yaml``: code SFT at a constant lr of 3e-7; DPO with beta in [3e-4, 3e-3] and an
SFT weight in [1e-5, 1e-3]; RPO with eta = 1, SFT weight 1e-5 and three iterations.

All fields are plain typed values so ``OmegaConf.structured`` can merge YAML and ``key=value`` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flywheel.errors import FlywheelError
from flywheel.hardware import ALLOCATOR_CHOICES, AUTOCAST_CHOICES

LR_SCHEDULES = ("cosine", "constant", "linear")
TRUNCATIONS = ("left_prompt", "right")
DISTANCES = ("bwd_kl", "fwd_kl", "sq")
SFT_REDUCTIONS = ("mean", "sum")


@dataclass
class StageConfig:
    """Hyperparameters of one training stage (SFT, DPO or one RPO iteration).

    ``batch_size`` counts sequences (SFT) or preference pairs (DPO/RPO) per worker and micro-step; the global
    batch is ``batch_size * grad_accum * num_workers``.

    ``truncation``:
        ``left_prompt`` -- when prompt + response exceed ``max_len``, drop prompt tokens from the left (oldest
        turns first) and keep the response whole; a response longer than ``max_len - 8`` on its own is cut on
        the right so at least the last 8 prompt tokens (the assistant header) survive. In a preference pair
        both sides keep the same prompt tokens.
        ``right`` -- cut the whole sequence on the right.
    """

    lr: float = 1e-5
    epochs: float = 1.0  # fractions allowed: 0.5 = half a pass
    max_steps: int = -1  # optimizer steps; -1 = run by epochs
    batch_size: int = 4
    grad_accum: int = 1
    max_len: int = 1024
    truncation: str = "left_prompt"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    beta: float = 0.1  # DPO/RPO: scale of the implicit reward beta * (log pi - log pi_ref)
    eta: float = 1.0  # RPO: scale of the reward-model reward difference
    sft_weight: float = 0.0  # DPO/RPO: weight of the NLL on the chosen response
    sft_reduction: str = "mean"  # per-example NLL: mean over its label tokens, or their sum
    distance: str = "bwd_kl"  # RPO distance D[a || b]
    iterations: int = 1  # RPO: how many RPO rounds the caller chains (each starts from and refers to the last)
    checkpoint_every: int = 0  # optimizer steps between resumable checkpoints; 0 = never
    seed: int = 0
    max_grad_norm: float = 1.0  # 0 = no clipping


@dataclass
class LoraConfig:
    """Low-rank adapters (peft) on the policy: only adapters train; they are merged into the weights at export."""

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


def _sft_code() -> StageConfig:
    return StageConfig(lr=2e-5, epochs=1.0, lr_schedule="constant", warmup_ratio=0.0)


def _sft_general() -> StageConfig:
    return StageConfig(lr=1e-5, epochs=1.0, lr_schedule="cosine", warmup_ratio=0.03)


def _dpo() -> StageConfig:
    return StageConfig(lr=1e-6, epochs=1.0, lr_schedule="constant", beta=0.1, sft_weight=1e-3)


def _rpo() -> StageConfig:
    return StageConfig(lr=1e-6, epochs=1.0, lr_schedule="constant", beta=0.1, eta=1.0, sft_weight=1e-5, iterations=3)


@dataclass
class TrainConfig:
    """Ray Train + DeepSpeed resources and the four stages of the report's alignment recipe.

    ``code_replay`` is the fraction of code-SFT rows mixed back into general SFT (the report keeps a small
    share of code data so the second stage does not erase the first).
    """

    num_workers: int = 2
    cpus_per_worker: float = 1.0
    use_gpu: bool = False
    backend: str = "gloo"
    zero_stage: int = 0
    bf16: bool = False
    autocast: str = "auto"  # bf16 autocast of the forwards: auto (GPUs, CPUs with native bf16) | bf16 | off
    # memory allocator of the training workers: system (glibc) | jemalloc (Ray's bundled jemalloc) | auto
    # (jemalloc on Linux where Ray ships it): less peak memory than glibc on a 2-core AMX CPU, step speed within
    # that machine's noise (docs/benchmarks.md; bench/bench_allocator.py measures it)
    allocator: str = "auto"
    code_replay: float = 0.02
    ref_batch_size: int = 8  # pairs per forward in the one-off reference log-prob pass
    # restarts of a fit whose worker process died (the OOM killer, a lost node) or whose workers did not start;
    # each skips the finished jobs and resumes the running one from its last checkpoint. An exception of the
    # training code itself (bad data) is never retried
    max_failures: int = 2
    lora: LoraConfig = field(default_factory=LoraConfig)
    sft_code: StageConfig = field(default_factory=_sft_code)
    sft_general: StageConfig = field(default_factory=_sft_general)
    dpo: StageConfig = field(default_factory=_dpo)
    rpo: StageConfig = field(default_factory=_rpo)


def validate_stage(stage: StageConfig, where: str) -> None:
    """Raise :class:`FlywheelError` naming the first bad field of ``stage`` (``where`` prefixes the key)."""
    checks = [
        (stage.lr > 0, "lr must be > 0"),
        (stage.epochs > 0 or stage.max_steps > 0, "needs epochs > 0 or max_steps > 0"),
        (stage.batch_size >= 1, "batch_size must be >= 1"),
        (stage.grad_accum >= 1, "grad_accum must be >= 1"),
        (stage.max_len >= 16, "max_len must be >= 16"),
        (stage.truncation in TRUNCATIONS, f"truncation must be one of {', '.join(TRUNCATIONS)}"),
        (0.0 <= stage.warmup_ratio < 1.0, "warmup_ratio must be in [0, 1)"),
        (stage.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}"),
        (stage.beta > 0, "beta must be > 0"),
        (stage.sft_weight >= 0, "sft_weight must be >= 0"),
        (stage.sft_reduction in SFT_REDUCTIONS, f"sft_reduction must be one of {', '.join(SFT_REDUCTIONS)}"),
        (stage.distance in DISTANCES, f"distance must be one of {', '.join(DISTANCES)}"),
        (stage.iterations >= 1, "iterations must be >= 1"),
        (stage.checkpoint_every >= 0, "checkpoint_every must be >= 0"),
    ]
    for ok, msg in checks:
        if not ok:
            raise FlywheelError(f"config: {where}.{msg}")


def validate_train(cfg: TrainConfig) -> None:
    """Check resources and every stage; raise :class:`FlywheelError` on the first problem."""
    checks = [
        (cfg.num_workers >= 1, "train.num_workers must be >= 1"),
        (cfg.cpus_per_worker > 0, "train.cpus_per_worker must be > 0"),
        (cfg.zero_stage in (0, 1, 2, 3), "train.zero_stage must be 0, 1, 2 or 3"),
        (cfg.backend in ("gloo", "nccl"), "train.backend must be gloo or nccl"),
        (0.0 <= cfg.code_replay <= 1.0, "train.code_replay must be in [0, 1]"),
        (cfg.ref_batch_size >= 1, "train.ref_batch_size must be >= 1"),
        (cfg.max_failures >= 0, "train.max_failures must be >= 0"),
        (cfg.autocast in AUTOCAST_CHOICES, f"train.autocast must be one of {', '.join(AUTOCAST_CHOICES)}"),
        (cfg.allocator in ALLOCATOR_CHOICES, f"train.allocator must be one of {', '.join(ALLOCATOR_CHOICES)}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise FlywheelError(f"config: {msg}")
    if cfg.lora.enabled:
        lora_checks = [
            (cfg.lora.r >= 1, "train.lora.r must be >= 1"),
            (cfg.lora.alpha > 0, "train.lora.alpha must be > 0"),
            (0.0 <= cfg.lora.dropout < 1.0, "train.lora.dropout must be in [0, 1)"),
            (len(cfg.lora.target_modules) > 0, "train.lora.target_modules must name at least one module"),
            (cfg.zero_stage < 3, "train.lora.enabled needs train.zero_stage 0, 1 or 2 (adapters are merged on rank 0)"),
        ]
        for ok, msg in lora_checks:
            if not ok:
                raise FlywheelError(f"config: {msg}")
    for name in ("sft_code", "sft_general", "dpo", "rpo"):
        validate_stage(getattr(cfg, name), f"train.{name}")
