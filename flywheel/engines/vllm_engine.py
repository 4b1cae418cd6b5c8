"""vLLM engines as plain classes (Ray turns them into actors at the call site; tests run them in-process).

``ChatEngine`` samples chat completions; ``RewardEngine`` scores conversations with a 5-output regression
head through vLLM's pooling runner (``LLM.classify``). Both take only the values they need.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from flywheel.hardware import cpu_has_bf16

# Engine start-up without a spawned engine-core process: seconds instead of tens of seconds on CPU.
CPU_ENV = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_NO_USAGE_STATS": "1",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "VLLM_LOGGING_LEVEL": "WARNING",
    "PYTHONWARNINGS": "ignore",
}


@dataclass
class EngineSpec:
    """What one engine needs: a picklable subset of :class:`flywheel.config.EngineConfig`."""

    model: str
    dtype: str = "auto"  # auto: bfloat16 on GPUs and on CPUs with bf16 instructions, else float32
    max_model_len: int = 1024
    kv_cache_gb: float = 1.0
    enforce_eager: bool = True
    tensor_parallel: int = 1
    seed: int = 0
    on_gpu: bool = False
    metrics: bool = False  # export vLLM's engine metrics (tokens, queue, KV cache) as Ray metrics
    prefix_caching: bool | None = None  # chat engines only; None = vLLM's default for the model and device
    fast_top_p: bool = True  # CPU chat engines: top-p masked without sorting the vocabulary (same tokens kept)


def engine_spec(model_dir: str, engine: Any, seed: int) -> EngineSpec:
    """The spec of one engine over ``model_dir`` from an :class:`flywheel.config.EngineConfig`."""
    return EngineSpec(
        model=model_dir,
        dtype=engine.dtype,
        max_model_len=engine.max_model_len,
        kv_cache_gb=engine.kv_cache_gb,
        enforce_eager=engine.enforce_eager,
        tensor_parallel=engine.tensor_parallel,
        seed=seed,
        on_gpu=engine.gpus_per_actor > 0,
        metrics=engine.metrics,
        prefix_caching=engine.prefix_caching,
        fast_top_p=engine.fast_top_p,
    )


def resolve_dtype(dtype: str, on_gpu: bool) -> str:
    """``auto`` -> ``bfloat16`` on GPUs and bf16-capable CPUs, ``float32`` on other CPUs; else as given."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if on_gpu or cpu_has_bf16() else "float32"


def _llm_kwargs(spec: EngineSpec, runner: str) -> dict[str, Any]:
    kw: dict[str, Any] = dict(
        model=spec.model,
        dtype=resolve_dtype(spec.dtype, spec.on_gpu),
        max_model_len=spec.max_model_len,
        enforce_eager=spec.enforce_eager,
        tensor_parallel_size=spec.tensor_parallel,
        seed=spec.seed,  # per-request seeds crash the CPU engine on split batches: seed the engine
    )
    if not spec.on_gpu:
        kw["kv_cache_memory_bytes"] = int(spec.kv_cache_gb * (1 << 30))
    if spec.metrics:
        kw["disable_log_stats"] = False
    if runner == "generate" and spec.prefix_caching is not None:  # pooling models: vLLM decides (warns otherwise)
        kw["enable_prefix_caching"] = spec.prefix_caching
    return kw


def _ray_metrics(llm: Any) -> None:
    """Route the engine's stats to Ray's metrics agent (``ray_vllm:*`` in Prometheus, see dashboards/).

    The offline ``LLM`` class builds its stat loggers without a hook; this swaps them for vLLM's own
    Ray logger. A vLLM without that logger leaves metrics off and says so; generation is unaffected.
    """
    import logging

    try:
        from vllm.v1.metrics.loggers import StatLoggerManager
        from vllm.v1.metrics.ray_wrappers import RayPrometheusStatLogger

        engine = llm.llm_engine
        engine.logger_manager = StatLoggerManager(
            vllm_config=engine.vllm_config, custom_stat_loggers=[RayPrometheusStatLogger], enable_default_loggers=False
        )
    except Exception as err:  # an API move in vLLM must not stop generation
        logging.getLogger(__name__).warning("vLLM metrics off: %s", err)


def _set_cpu_env(spec: EngineSpec) -> None:
    if not spec.on_gpu:
        for k, v in CPU_ENV.items():
            os.environ.setdefault(k, v)
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(spec.kv_cache_gb))))


def patch_top_p() -> bool:
    """Route vLLM's top-p mask through :func:`flywheel.engines.sampling.nucleus_mask` in this process.

    Only batches with top-p and without top-k on a CPU take the new path; everything else, and a vLLM whose
    sampler module has moved, keeps vLLM's own code. Returns whether the patch is in place.
    """
    from flywheel.engines.sampling import nucleus_mask

    try:
        from vllm.v1.sample.ops import topk_topp_sampler as ops
    except ImportError:
        return False
    original = getattr(ops, "apply_top_k_top_p", None)
    if original is None:
        return False
    if getattr(original, "flywheel_nucleus", False):
        return True

    def apply_top_k_top_p(logits: Any, k: Any, p: Any) -> Any:
        if p is None or k is not None or logits.device.type != "cpu":
            return original(logits, k, p)
        return nucleus_mask(logits, p, wide=lambda rows, pp: original(rows, None, pp))

    apply_top_k_top_p.flywheel_nucleus = True  # type: ignore[attr-defined]
    ops.apply_top_k_top_p = apply_top_k_top_p
    return True


class ChatEngine:
    """One vLLM engine producing chat completions."""

    def __init__(self, spec: EngineSpec):
        _set_cpu_env(spec)
        self.fast_top_p = patch_top_p() if spec.fast_top_p and not spec.on_gpu else False
        from vllm import LLM

        self.spec = spec
        self.llm = LLM(runner="generate", **_llm_kwargs(spec, "generate"))
        if spec.metrics:
            _ray_metrics(self.llm)

    def ready(self) -> bool:
        return True

    def chat(self, conversations: list[list[dict]], sampling: dict, n: int = 1) -> dict:
        """Complete each conversation ``n`` times.

        Args:
            conversations: lists of {"role", "content"} messages, each ending with a user turn.
            sampling: temperature, top_p, max_tokens, min_tokens (temperature 0 = greedy).
        Returns:
            {"texts": [[str] * n per conversation], "finished": [[bool] * n] (False: cut at ``max_tokens``),
            "tokens": generated token count, "seconds": wall time}
        """
        from vllm import SamplingParams

        params = SamplingParams(n=n, **sampling)
        t0 = time.perf_counter()
        outs = self.llm.chat(conversations, sampling_params=params, use_tqdm=False)  # type: ignore[arg-type]
        texts = [[c.text for c in o.outputs] for o in outs]
        finished = [[c.finish_reason != "length" for c in o.outputs] for o in outs]
        tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
        return {"texts": texts, "finished": finished, "tokens": tokens, "seconds": time.perf_counter() - t0}


class RewardEngine:
    """One vLLM pooling engine returning the 5 HelpSteer attribute scores per conversation."""

    def __init__(self, spec: EngineSpec):
        _set_cpu_env(spec)
        from vllm import LLM

        self.spec = spec
        self.llm = LLM(runner="pooling", **_llm_kwargs(spec, "pooling"))
        if spec.metrics:
            _ray_metrics(self.llm)
        self.tokenizer = self.llm.get_tokenizer()

    def ready(self) -> bool:
        return True

    def score(self, conversations: list[list[dict]]) -> dict:
        """Raw head outputs (no activation): {"scores": [[5 floats]], "seconds": ...}."""
        from vllm import PoolingParams

        t0 = time.perf_counter()
        texts = [format_conversation(self.tokenizer, c) for c in conversations]
        outs = self.llm.classify(texts, pooling_params=PoolingParams(use_activation=False), use_tqdm=False)
        scores = [[float(x) for x in o.outputs.probs] for o in outs]
        return {"scores": scores, "seconds": time.perf_counter() - t0}


def format_conversation(tokenizer, messages: list[dict]) -> str:
    """The exact text the reward model reads: the chat template over the whole conversation."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
