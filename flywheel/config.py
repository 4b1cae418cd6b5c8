"""Typed configuration: dataclass sections, merged with a YAML profile and ``key=value`` overrides.

The dataclass defaults are the ``local`` profile (SmolLM2-135M-Instruct on CPU). ``configs/*.yaml`` override
them; a YAML may name another one under ``base:`` to build on it. Each area owns its section's dataclass
(``flywheel.sdg.config``, ``flywheel.judges.config``, ``flywheel.train.config``); functions receive only the
section they need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from flywheel.errors import FlywheelError
from flywheel.judges.config import JudgeConfig, validate_judge_config
from flywheel.models import TinyModelConfig
from flywheel.reward.config import RewardConfig, validate_reward_config
from flywheel.sdg.config import SDGConfig
from flywheel.sdg.config import validate as validate_sdg
from flywheel.train.config import TrainConfig, validate_train


@dataclass
class RunConfig:
    name: str = "default"
    root: str = "runs/default"  # any fsspec URI: local path or s3://bucket/prefix
    storage_options: dict[str, Any] = field(default_factory=dict)  # e.g. {endpoint_url: ...}; no secrets here
    seed: int = 0
    cache_dir: str = "~/.cache/flywheel"  # local copies of remote models, converted checkpoints


@dataclass
class ModelsConfig:
    initial: str = "smollm2"  # smollm2 | tiny | path/URI of a HF causal-LM directory
    reward: str = "from-initial"  # tiny | from-initial (initial backbone + fresh 5-output head) | path/URI
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)


@dataclass
class SamplingConfig:
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 128
    min_tokens: int = 1


@dataclass
class EngineConfig:
    """vLLM engines held by Ray actors. On a GPU cluster: gpus_per_actor=1, tensor_parallel as needed."""

    num_actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    tensor_parallel: int = 1
    pin_cores: bool = True  # CPU: bind each actor's vLLM threads to its own core
    dtype: str = "auto"  # auto: bfloat16 on GPUs and bf16-capable CPUs (AVX512-BF16/AMX), float32 elsewhere
    max_model_len: int = 1024
    kv_cache_gb: float = 1.0
    enforce_eager: bool = True
    batch_size: int = 64  # prompts per request to one actor
    max_retries: int = 2
    metrics: bool = False  # vLLM engine metrics (tokens, queue, KV cache) as Ray metrics, for dashboards/


def _greedy() -> SamplingConfig:
    return SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=128)


@dataclass
class GenerationConfig:
    prompt_sampling: SamplingConfig = field(default_factory=SamplingConfig)
    response_sampling: SamplingConfig = field(default_factory=SamplingConfig)
    # assistant turns inside synthetic prompts and dialogues (two-turn answers, IF answers, role-play)
    answer_sampling: SamplingConfig = field(default_factory=_greedy)
    samples_per_prompt: int = 4  # k responses per prompt, per response model
    response_models: list[str] = field(default_factory=list)  # model paths/URIs; [] = the round's generator
    prompt_files: list[str] = field(default_factory=lambda: ["builtin:seed_prompts.jsonl"])
    max_prompts: int = 0  # prompts kept by the prompt stage; 0 = no cap
    response_prompts: int = 0  # training prompts the responses stage answers (a mix of kinds); 0 = all


@dataclass
class EvalConfig:
    heldout_file: str = "builtin:heldout_prompts.jsonl"
    max_prompts: int = 32
    max_tokens: int = 128
    margin: float = 0.0  # candidate must beat the generator's mean reward by more than this
    metric: str = "mean_reward"  # mean_reward | win_rate


@dataclass
class RayConfig:
    address: str = "local"  # "local" starts a private Ray; "auto" or ray://... joins a cluster
    num_cpus: int | None = None


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str = ""  # "" = sqlite under the run root (local roots) or under cache_dir (remote roots)
    experiment: str = ""  # "" = run.name
    registered_model: str = "flywheel-generator"


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    sdg: SDGConfig = field(default_factory=SDGConfig)
    judges: JudgeConfig = field(default_factory=JudgeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)


def _load_yaml(path: str, seen: tuple[str, ...] = ()) -> Any:
    p = Path(path)
    if not p.is_file():
        raise FlywheelError(f"config file not found: {path}")
    try:
        node = OmegaConf.load(p)
    except Exception as err:  # yaml.YAMLError and friends
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FlywheelError(f"{path}: invalid YAML ({msg})") from None
    base = node.pop("base", None) if isinstance(node, DictConfig) else None
    if base:
        base_path = str((p.parent / str(base)).resolve())
        if base_path in seen:
            raise FlywheelError(f"{path}: circular base {base}")
        return [*_load_yaml(base_path, (*seen, base_path)), (path, node)]
    return [(path, node)]


def load_config(path: str | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults <- YAML (and its ``base:`` chain) <- ``key=value`` overrides, validated.

    Raises:
        FlywheelError: one line naming the unknown/mistyped key and the file (or "command line").
    """
    cfg = OmegaConf.structured(Config)
    layers = _load_yaml(path) if path else []
    for src, node in layers:
        cfg = _merge(cfg, node, src)
    if overrides:
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise FlywheelError(f"command line: override {bad[0]!r} is not key=value")
        try:
            dot = OmegaConf.from_dotlist(list(overrides))
        except OmegaConfBaseException as err:
            raise FlywheelError(f"command line: {_one_line(err)}") from None
        cfg = _merge(cfg, dot, "command line")
    try:
        obj: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        raise FlywheelError(f"{path or 'config'}: {_one_line(err)}") from None
    validate(obj)
    return obj


def _merge(cfg, node, src: str):
    try:
        return OmegaConf.merge(cfg, node)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        if "not in struct" in str(err) or type(err).__name__ == "ConfigKeyError":
            raise FlywheelError(f"{src}: unknown config key {key!r}") from None
        raise FlywheelError(f"{src}: bad value for {key!r}: {_one_line(err)}") from None


def _one_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0]


def validate(cfg: Config) -> None:
    """Cross-field checks the types cannot express."""
    checks = [
        (cfg.engine.num_actors >= 1, "engine.num_actors must be >= 1"),
        (cfg.generation.samples_per_prompt >= 2, "generation.samples_per_prompt must be >= 2 (pairs need two)"),
        (cfg.eval.metric in ("mean_reward", "win_rate"), "eval.metric must be mean_reward or win_rate"),
        (cfg.models.tiny.head_dim >= 32, "models.tiny.head_dim must be >= 32 (vLLM CPU attention)"),
        (cfg.models.tiny.heads % cfg.models.tiny.kv_heads == 0, "models.tiny.heads must be a multiple of kv_heads"),
    ]
    for ok, msg in checks:
        if not ok:
            raise FlywheelError(f"config: {msg}")
    validate_train(cfg.train)
    validate_sdg(cfg.sdg)
    validate_judge_config(cfg.judges)
    validate_reward_config(cfg.reward)


def to_dict(section: Any) -> dict:
    """A dataclass section as a plain dict (for hashing and MLflow params)."""
    return OmegaConf.to_container(OmegaConf.structured(section), resolve=True)  # type: ignore[return-value]


def expand(path: str) -> str:
    return os.path.expanduser(path)


def builtin_or_path(spec: str) -> str:
    """``builtin:NAME`` names a file shipped in ``flywheel/data``; anything else is a path/URI."""
    if spec.startswith("builtin:"):
        return str(resources.files("flywheel") / "data" / spec.split(":", 1)[1])
    return expand(spec)
