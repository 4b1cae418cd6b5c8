"""Engine pools kept alive across the stages of a process: one chat pool and one reward pool at most.

One Ray session serves a whole ``iterate``; one chat pool per model is kept alive across the prompt and
response stages and released before training needs the cores.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flywheel import costs
from flywheel.engines.pool import EnginePool, ensure_ray
from flywheel.engines.vllm_engine import ChatEngine, RewardEngine, engine_spec

log = logging.getLogger("flywheel")


class EngineCache:
    """Keeps at most one chat pool and one reward pool alive; a new model replaces the old pool."""

    def __init__(self, engine: Any, ray_cfg: Any, seed: int):
        """``engine``: :class:`flywheel.config.EngineConfig`; ``ray_cfg``: :class:`flywheel.config.RayConfig`."""
        self.engine, self.ray_cfg, self.seed = engine, ray_cfg, seed
        self.pools: dict[str, tuple[tuple[str, int], EnginePool]] = {}

    def _pool(self, kind: str, model_dir: str, num_actors: int, seed: int | None = None):
        seed = self.seed if seed is None else seed
        held = self.pools.get(kind)
        if held and held[0] == (model_dir, seed):
            return held[1]
        self.release(kind)
        ensure_ray(self.ray_cfg.address, self.ray_cfg.num_cpus)
        cls = ChatEngine if kind == "chat" else RewardEngine
        e = self.engine
        self._make_room(kind, num_actors * e.cpus_per_actor, num_actors * e.gpus_per_actor)
        log.info("starting %d %s engine(s) on %s", num_actors, kind, model_dir)
        t0 = time.perf_counter()
        pool = EnginePool(
            cls,
            engine_spec(model_dir, e, seed),
            num_actors=num_actors,
            cpus_per_actor=e.cpus_per_actor,
            gpus_per_actor=e.gpus_per_actor,
            pin_cores=e.pin_cores,
            max_retries=e.max_retries,
            allocator=e.allocator,
        )
        costs.add("engine_start", time.perf_counter() - t0)  # the pool returns once every actor is ready
        self.pools[kind] = ((model_dir, seed), pool)
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

    def chat(self, model_dir: str, seed: int | None = None):
        """The chat pool on ``model_dir`` whose engines sample with ``seed`` (default: the run's seed)."""
        return self._pool("chat", model_dir, self.engine.num_actors, seed)

    def reward(self, model_dir: str):
        # as many scorers as chat engines: scoring is split into independent batches, and one actor on
        # ``cpus_per_actor`` cores would leave the rest of the machine idle through the judge stage
        return self._pool("reward", model_dir, self.engine.num_actors)

    def release(self, kind: str | None = None) -> None:
        for k in [kind] if kind else list(self.pools):
            held = self.pools.pop(k, None)
            if held:
                held[1].shutdown()
