"""Long-lived runtime pieces: engine pools reused across stages, and which model plays which part.

One Ray session serves a whole ``iterate``; one chat pool per model is kept alive across the prompt and
response stages and released before training needs the cores.
"""

from __future__ import annotations

import logging
import os

from flywheel.config import EngineConfig, RayConfig
from flywheel.errors import FlywheelError
from flywheel.models import build_reward_model, build_tiny_causal_lm, check_model_dir, pull_smollm2, smollm2_tokenizer
from flywheel.stages.common import Context
from flywheel.store import fingerprint

log = logging.getLogger("flywheel")


class EngineCache:
    """Keeps at most one chat pool and one reward pool alive; a new model replaces the old pool."""

    def __init__(self, engine: EngineConfig, ray_cfg: RayConfig, seed: int):
        self.engine, self.ray_cfg, self.seed = engine, ray_cfg, seed
        self.pools: dict[str, tuple[str, object]] = {}

    def _spec(self, model_dir: str):
        from flywheel.engines.vllm_engine import EngineSpec

        e = self.engine
        return EngineSpec(model=model_dir, dtype=e.dtype, max_model_len=e.max_model_len, kv_cache_gb=e.kv_cache_gb,
                          enforce_eager=e.enforce_eager, tensor_parallel=e.tensor_parallel, seed=self.seed,
                          on_gpu=e.gpus_per_actor > 0, metrics=e.metrics)

    def _pool(self, kind: str, model_dir: str, num_actors: int):
        from flywheel.engines.pool import EnginePool, ensure_ray
        from flywheel.engines.vllm_engine import ChatEngine, RewardEngine

        held = self.pools.get(kind)
        if held and held[0] == model_dir:
            return held[1]
        self.release(kind)
        ensure_ray(self.ray_cfg.address, self.ray_cfg.num_cpus)
        cls = ChatEngine if kind == "chat" else RewardEngine
        e = self.engine
        self._make_room(kind, num_actors * e.cpus_per_actor, num_actors * e.gpus_per_actor)
        log.info("starting %d %s engine(s) on %s", num_actors, kind, model_dir)
        pool = EnginePool(cls, self._spec(model_dir), num_actors=num_actors, cpus_per_actor=e.cpus_per_actor,
                          gpus_per_actor=e.gpus_per_actor, pin_cores=e.pin_cores, max_retries=e.max_retries)
        self.pools[kind] = (model_dir, pool)
        return pool

    def _make_room(self, kind: str, cpus: float, gpus: float) -> None:
        """Stop the other kinds' pools when the cluster has no room for this one (stages use them in turn)."""
        import ray

        free = ray.available_resources()
        if free.get("CPU", 0.0) >= cpus and free.get("GPU", 0.0) >= gpus:
            return
        others = [k for k in self.pools if k != kind]
        if others:
            log.info("releasing %s engine(s) to make room for %s", ", ".join(others), kind)
        for k in others:
            self.release(k)

    def chat(self, model_dir: str):
        return self._pool("chat", model_dir, self.engine.num_actors)

    def reward(self, model_dir: str):
        return self._pool("reward", model_dir, 1)

    def release(self, kind: str | None = None) -> None:
        for k in [kind] if kind else list(self.pools):
            held = self.pools.pop(k, None)
            if held:
                held[1].shutdown()


def engines(ctx: Context) -> EngineCache:
    if ctx.engines is None:
        ctx.engines = EngineCache(ctx.cfg.engine, ctx.cfg.ray, ctx.cfg.run.seed)
    return ctx.engines


def model_dir(ctx: Context, uri: str, what: str = "model") -> str:
    """A local directory for a model URI (store URI or local path), checked."""
    if "://" in uri:
        path = ctx.store.local_dir(uri, os.path.join(ctx.cache_dir, "store"))
    else:
        path = os.path.expanduser(uri)
    return check_model_dir(path, what)


def _bootstrap(ctx: Context, name: str, build) -> str:
    uri = ctx.store.uri("models", name)
    if not ctx.store.exists(f"{uri}/config.json"):
        if ctx.store.is_local:
            build(ctx.store._p(uri))
        else:
            local = os.path.join(ctx.cache_dir, "build", name)
            build(local)
            ctx.store.put_dir(local, uri)
    return uri


def initial_model(ctx: Context) -> dict:
    """The round-1 generator: ``{"uri", "id"}``."""
    spec = ctx.cfg.models.initial
    if spec == "smollm2":
        uri = pull_smollm2(ctx.cache_dir)
    elif spec == "tiny":
        tok = smollm2_tokenizer(ctx.cache_dir)
        tiny = ctx.cfg.models.tiny
        uri = _bootstrap(ctx, f"tiny-{tiny.arch}-{fingerprint(tiny.__dict__)}",
                         lambda out: build_tiny_causal_lm(out, tok, tiny, seed=ctx.cfg.run.seed))
    else:
        uri = spec
        model_dir(ctx, uri, "models.initial")
    return {"uri": uri, "id": f"initial:{os.path.basename(uri.rstrip('/'))}"}


def reward_model(ctx: Context) -> dict:
    """The reward model ``{"uri", "id"}``: a path, a tiny random one, or the initial backbone + fresh head."""
    spec = ctx.cfg.models.reward
    if spec == "tiny":
        tok = smollm2_tokenizer(ctx.cache_dir)
        tiny = ctx.cfg.models.tiny
        uri = _bootstrap(ctx, f"reward-tiny-{fingerprint(tiny.__dict__)}",
                         lambda out: build_reward_model(out, None, tok, tiny=_llama(tiny), seed=ctx.cfg.run.seed))
    elif spec == "from-initial":
        init = initial_model(ctx)
        backbone = model_dir(ctx, init["uri"], "models.initial")
        uri = _bootstrap(ctx, f"reward-from-{os.path.basename(init['uri'].rstrip('/'))}",
                         lambda out: build_reward_model(out, backbone, backbone, seed=ctx.cfg.run.seed))
    else:
        uri = spec
        model_dir(ctx, uri, "models.reward")
    return {"uri": uri, "id": f"reward:{os.path.basename(uri.rstrip('/'))}"}


def _llama(tiny):
    from dataclasses import replace

    return replace(tiny, arch="llama")


def generator(ctx: Context) -> dict:
    """The generator for this round: the initial model in round 1, else what round-1 promotion decided."""
    if ctx.round == 1:
        return initial_model(ctx)
    prev = ctx.store.manifest(ctx.round - 1, "promote")
    if prev is None:
        raise FlywheelError(f"round {ctx.round - 1} has not finished (no promotion); run `flywheel iterate --round {ctx.round - 1}` first")
    return prev["outputs"]["generator"]
