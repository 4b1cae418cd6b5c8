"""Typed configuration: dataclass sections, merged with a YAML profile and ``key=value`` overrides.

The dataclass defaults are the ``local`` profile (SmolLM2-135M-Instruct on CPU). ``configs/*.yaml`` override
them; a YAML may name another one under ``base:`` to build on it. Each area owns its section's dataclass
(``flywheel.sdg.config``, ``flywheel.judges.config``, ``flywheel.train.config``); functions receive only the
section they need.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from flywheel.errors import FlywheelError
from flywheel.hardware import ALLOCATOR_CHOICES
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
    lock_wait_s: float = 0.0  # a root another run holds: 0 stops at once naming the holder; > 0 waits this long
    dataset_format: str = "jsonl"  # the datasets stage's parts: jsonl | parquet (both load with `datasets`)


def _tiny_student() -> TinyModelConfig:
    return TinyModelConfig(arch="llama", layers=3, hidden=192, intermediate=384, heads=6, kv_heads=2)


REWARD_SPECS = ("trained", "untrained", "from-initial", "tiny")


@dataclass
class ModelsConfig:
    """Which model plays which part.

    Attributes:
        initial: the round-1 generator: ``smollm2`` | ``tiny`` | path/URI of a HF causal-LM directory.
        student: the model each round aligns (weak-to-strong: a stronger base than the generator): "" = the
            round's generator (self-improvement), ``tiny`` (a random ``tiny_student``, tests), ``smollm2``,
            or a path/URI. The promoted student is the next round's generator.
        reward: the judge: ``trained`` (the run's ``reward`` stage trains it; the default), a path/URI of a
            trained reward model (the ``reward`` stage then only evaluates it), or an untrained head, asked
            for explicitly: ``untrained`` (the initial backbone + a fresh 5-output head; ``from-initial`` is
            the same) or ``tiny`` (a random tiny one, tests).
    """

    initial: str = "smollm2"
    student: str = ""
    reward: str = "trained"
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    tiny_student: TinyModelConfig = field(default_factory=_tiny_student)


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
    # vLLM's automatic prefix caching of chat engines (shared templates, the k samples of one prompt); null = vLLM's
    # default for the model and device (on for decoder chat models on x86 CPUs and on GPUs)
    prefix_caching: bool | None = None
    # CPU engines: top-p masked from the most probable tokens instead of a sort of the whole vocabulary at
    # every step (the same tokens kept; 1.7-2.3x on sampled decoding, docs/benchmarks.md); false: vLLM's own
    fast_top_p: bool = True
    # memory allocator of the engine actors: system (glibc) | jemalloc (the one Ray ships) | auto (jemalloc
    # on Linux where Ray ships it); see flywheel.hardware.allocator_env and docs/benchmarks.md
    allocator: str = "auto"
    # sequences per request to one actor (a stage sampling k answers a prompt sends batch_size // k prompts):
    # on CPU, decode throughput grows with the batch until the KV cache is full (docs/benchmarks.md)
    batch_size: int = 64
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
    # more samples (from the round's first response model) for each prompt with a verifier whose k samples all
    # fail it and none can be repaired: where the generator is weakest, a verified answer still turns up; 0 = off
    retry_samples: int = 0
    response_models: list[str] = field(default_factory=list)  # model paths/URIs; [] = the round's generator
    # each a path/URI (JSONL or Parquet, layout detected) or {path, format} (flywheel.sdg.formats.FORMATS)
    prompt_files: list[Any] = field(default_factory=lambda: ["builtin:seed_prompts.jsonl"])
    max_prompts: int = 0  # prompts kept by the prompt stage; 0 = no cap
    response_prompts: int = 0  # training prompts the responses stage answers (a mix of kinds); 0 = all


SUITES = ("if", "math", "reward")


@dataclass
class EvalConfig:
    """Held-out evaluation and the promotion gate (:mod:`flywheel.evals`).

    Suites, each scored per prompt on the same prompts for the candidate, the current generator and the
    initial model: ``if`` (verifiable instructions, IFEval-style; per prompt: all instructions followed,
    strict), ``math`` (known answers), ``reward`` (the reward model's preference of the candidate's answer
    over the generator's on chat prompts: 1 win, 0.5 tie, 0 loss, against 0.5).

    Attributes:
        if_file, math_file: the suites (``builtin:`` = shipped; disjoint from the SDG, see flywheel/evals/suites.py).
        if_prompts, math_prompts: prompts used from each (0 = all); a fixed prefix, so rounds compare alike.
        heldout_file, max_prompts: chat prompts of the ``reward`` suite.
        max_tokens: answer length cap (greedy decoding).
        primary: the suite that must improve: ``if`` (default), ``math`` or ``reward``.
        confidence: the primary suite's paired-bootstrap interval must lie above ``margin`` at this level, and
            its sign test must reject "no difference" at ``1 - confidence``.
        margin: the lower bound of the primary suite's improvement (absolute accuracy).
        tolerance: the largest mean regression allowed on every other suite.
        guard: ``confident`` (default): a suite past ``tolerance`` holds the candidate only if its interval at
            ``confidence`` lies below 0 (a regression shown, as the primary's gain must be); ``mean``: the mean
            alone decides (a suite of few prompts, or at its floor, then holds on noise).
        resamples: bootstrap resamples.
        always_promote: promote every candidate, whatever the suites say (tests and debugging; the reason says so).
    """

    if_file: str = "builtin:eval_if.jsonl"
    math_file: str = "builtin:eval_math.jsonl"
    if_prompts: int = 0
    math_prompts: int = 0
    heldout_file: str = "builtin:heldout_prompts.jsonl"
    max_prompts: int = 32
    max_tokens: int = 256
    primary: str = "if"
    confidence: float = 0.95
    margin: float = 0.0
    tolerance: float = 0.02
    guard: str = "confident"
    resamples: int = 2000
    always_promote: bool = False


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


def round_seed(seed: int, round_idx: int) -> int:
    """A configured seed as round ``round_idx`` uses it: as given in round 1 (and the run-level round 0),
    offset by one for each round after, so every round draws its own prompts, samples and selections -- a round
    whose generator was held (the same model as the round before) does not repeat that round's data."""
    return seed + max(0, round_idx - 1)


def round_config(cfg: Config, round_idx: int) -> Config:
    """``cfg`` with the seeds of the synthetic data (``sdg.seed``) and of the judges' selections
    (``judges.seed``) as round ``round_idx`` uses them (:func:`round_seed`); round 1 gets ``cfg`` itself."""
    if round_idx <= 1:
        return cfg
    return replace(
        cfg,
        sdg=replace(cfg.sdg, seed=round_seed(cfg.sdg.seed, round_idx)),
        judges=replace(cfg.judges, seed=round_seed(cfg.judges.seed, round_idx)),
    )


def _load_yaml(path: str, seen: tuple[str, ...] = ()) -> Any:
    p = Path(path)
    if not p.is_file():
        raise FlywheelError(f"config file not found: {path}")
    try:
        node = OmegaConf.load(p)
    except Exception as err:  # yaml.YAMLError and friends
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FlywheelError(f"{path}: invalid YAML ({msg})") from None
    if not isinstance(node, DictConfig):
        kind = "a list" if isinstance(node, ListConfig) else type(node).__name__
        raise FlywheelError(f"{path}: a config must be a mapping of sections (run:, models:, ...), got {kind}")
    base = node.pop("base", None)
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
    for name, value in node.items() if isinstance(node, DictConfig) else ():
        if name in cfg and OmegaConf.is_dict(cfg[name]) and not OmegaConf.is_dict(value) and value is not None:
            raise FlywheelError(
                f"{src}: {name!s} must be a mapping of its settings, got {type(value).__name__} {value!r}"
            )
    try:
        return OmegaConf.merge(cfg, node)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        if "not in struct" in str(err) or type(err).__name__ == "ConfigKeyError":
            raise FlywheelError(f"{src}: unknown config key {key!r}") from None
        raise FlywheelError(f"{src}: bad value for {key!r}: {_one_line(err)}") from None


def _one_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0]


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


def validate(cfg: Config) -> None:
    """Cross-field checks the types cannot express."""
    checks = [
        (cfg.engine.num_actors >= 1, "engine.num_actors must be >= 1"),
        (math.isfinite(cfg.engine.kv_cache_gb) and cfg.engine.kv_cache_gb > 0, "engine.kv_cache_gb must be > 0"),
        (cfg.engine.max_model_len >= 64, "engine.max_model_len must be >= 64"),
        (cfg.engine.batch_size >= 1, "engine.batch_size must be >= 1"),
        (
            cfg.engine.allocator in ALLOCATOR_CHOICES,
            f"engine.allocator must be one of {', '.join(ALLOCATOR_CHOICES)}, got {cfg.engine.allocator!r}",
        ),
        (cfg.engine.cpus_per_actor > 0 and cfg.engine.gpus_per_actor >= 0, "engine.cpus_per_actor must be > 0"),
        (
            bool(_NAME.fullmatch(cfg.run.name)),
            f"run.name must be letters, digits, '.', '_' or '-' (it names files and MLflow runs), got {cfg.run.name!r}",
        ),
        (
            math.isfinite(cfg.run.lock_wait_s) and cfg.run.lock_wait_s >= 0,
            "run.lock_wait_s must be a number of seconds >= 0",
        ),
        (
            cfg.run.dataset_format in ("jsonl", "parquet"),
            f"run.dataset_format must be jsonl or parquet, got {cfg.run.dataset_format!r}",
        ),
        (cfg.generation.samples_per_prompt >= 2, "generation.samples_per_prompt must be >= 2 (pairs need two)"),
        (cfg.generation.retry_samples >= 0, "generation.retry_samples must be >= 0"),
        (cfg.eval.primary in SUITES, f"eval.primary must be one of {', '.join(SUITES)}"),
        (0.0 < cfg.eval.confidence < 1.0, "eval.confidence must be in (0, 1)"),
        (math.isfinite(cfg.eval.margin), "eval.margin must be a finite number"),
        (math.isfinite(cfg.eval.tolerance) and cfg.eval.tolerance >= 0, "eval.tolerance must be a number >= 0"),
        (cfg.eval.guard in ("confident", "mean"), "eval.guard must be 'confident' or 'mean'"),
        (cfg.eval.resamples >= 100, "eval.resamples must be >= 100"),
        (cfg.eval.max_prompts >= 1, "eval.max_prompts must be >= 1"),
        (cfg.eval.if_prompts >= 0 and cfg.eval.math_prompts >= 0, "eval.if_prompts/math_prompts must be >= 0"),
        (cfg.eval.max_tokens >= 1, "eval.max_tokens must be >= 1"),
        (
            cfg.models.reward in REWARD_SPECS or "/" in cfg.models.reward or "://" in cfg.models.reward,
            f"models.reward must be one of {', '.join(REWARD_SPECS)} or a path/URI, got {cfg.models.reward!r}",
        ),
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


_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@/\s]+@")


# Matched against whole ``_``-separated words, so TOKENIZERS_PARALLELISM, KEYBOARD or max_tokens pass.
_SECRET_NAME = re.compile(
    r"(^|_)(SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?|SESSION|PRIVATE|KEY|KEY_ID)$|(^|_)(SECRET|TOKEN|"
    r"PASSWORD|PASSWD|CREDENTIALS?|PRIVATE)(_|$)",
    re.I,
)


def secret_name(name: str) -> bool:
    """Whether a variable or config key name (its last dotted part) looks like it holds a credential."""
    return bool(_SECRET_NAME.search(name.rsplit(".", 1)[-1]))


def check_shipped_overrides(overrides: list[str], where: str) -> None:
    """Refuse ``key=value`` overrides that carry a credential before they are sent to ``where``.

    Overrides become Prefect flow-run parameters (stored in Prefect's database, shown in its UI) and Ray job
    entrypoints (shown in the dashboard): a secret-looking key (``run.storage_options.secret=...``) or a URI
    with a password (``tracking.uri=http://u:pw@host``) is refused, naming the key, never the value.
    """
    for item in overrides:
        key, _, value = item.partition("=")
        if secret_name(key.strip()) or redact(value) != value:
            raise FlywheelError(
                f"override {key.strip()}: a credential would be stored in {where}; give it through the "
                "environment instead (the AWS chain, MLFLOW_TRACKING_USERNAME/PASSWORD, a .env file)"
            )


def redact(text: Any) -> Any:
    """``text`` with the password of any ``scheme://user:password@host`` in it replaced by ``***``.

    Anything else is returned as it is; used before a URI is logged, stored or sent as a parameter.
    """
    return _CREDENTIALS.sub(r"\g<head>:***@", text) if isinstance(text, str) else text


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
