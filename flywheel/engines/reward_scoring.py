"""Reward scoring on vLLM's pooling runner inside Ray actors.

``vllm_scorer`` starts an :class:`flywheel.engines.pool.EnginePool` of
:class:`flywheel.engines.vllm_engine.RewardEngine` actors and returns a plain ``conversations -> [N][5]``
function plus a closer; the transformers reference scorer is :class:`flywheel.reward.hf_scorer.HFRewardScorer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flywheel.engines.pool import EnginePool, ensure_ray
from flywheel.engines.vllm_engine import RewardEngine, engine_spec


def vllm_scorer(
    model_dir: str, engine: Any, ray_cfg: Any, seed: int = 0, num_actors: int = 1
) -> tuple[Callable[[Sequence[Sequence[dict]]], list[list[float]]], Callable[[], None]]:
    """A vLLM pooling scorer over ``model_dir``.

    Args:
        engine: :class:`flywheel.config.EngineConfig` (dtype, lengths, batch size, resources).
        ray_cfg: :class:`flywheel.config.RayConfig`.

    Returns:
        ``(score, close)``: ``score(conversations)`` gives raw head outputs in input order; ``close()``
        stops the actors.
    """
    ensure_ray(ray_cfg.address, ray_cfg.num_cpus)
    pool = EnginePool(
        RewardEngine,
        engine_spec(model_dir, engine, seed),
        num_actors=num_actors,
        cpus_per_actor=engine.cpus_per_actor,
        gpus_per_actor=engine.gpus_per_actor,
        pin_cores=engine.pin_cores,
        max_retries=engine.max_retries,
        allocator=engine.allocator,
    )
    size = max(1, engine.batch_size)

    def score(conversations: Sequence[Sequence[dict]]) -> list[list[float]]:
        batches = [list(conversations[i : i + size]) for i in range(0, len(conversations), size)]
        return [s for out in pool.run("score", [(b,) for b in batches]) for s in out["scores"]]

    return score, pool.shutdown
