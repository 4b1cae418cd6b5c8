"""Reward scoring on vLLM's pooling runner inside Ray actors, and MLflow logging of reward runs.

``vllm_scorer`` starts an :class:`flywheel.engines.pool.EnginePool` of
:class:`flywheel.engines.vllm_engine.RewardEngine` actors and returns a plain ``conversations -> [N][5]``
function plus a closer; the transformers reference scorer is :class:`flywheel.reward.score.HFRewardScorer`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from flywheel.engines.pool import EnginePool, ensure_ray
from flywheel.engines.vllm_engine import EngineSpec, RewardEngine


def vllm_scorer(model_dir: str, engine: Any, ray_cfg: Any, seed: int = 0,
                num_actors: int = 1) -> tuple[Callable[[Sequence[Sequence[dict]]], list[list[float]]], Callable[[], None]]:
    """A vLLM pooling scorer over ``model_dir``.

    Args:
        engine: :class:`flywheel.config.EngineConfig` (dtype, lengths, batch size, resources).
        ray_cfg: :class:`flywheel.config.RayConfig`.

    Returns:
        ``(score, close)``: ``score(conversations)`` gives raw head outputs in input order; ``close()``
        stops the actors.
    """
    ensure_ray(ray_cfg.address, ray_cfg.num_cpus)
    spec = EngineSpec(model=model_dir, dtype=engine.dtype, max_model_len=engine.max_model_len,
                      kv_cache_gb=engine.kv_cache_gb, enforce_eager=engine.enforce_eager,
                      tensor_parallel=engine.tensor_parallel, seed=seed, on_gpu=engine.gpus_per_actor > 0,
                      metrics=engine.metrics)
    pool = EnginePool(RewardEngine, spec, num_actors=num_actors, cpus_per_actor=engine.cpus_per_actor,
                      gpus_per_actor=engine.gpus_per_actor, pin_cores=engine.pin_cores, max_retries=engine.max_retries)
    size = max(1, engine.batch_size)

    def score(conversations: Sequence[Sequence[dict]]) -> list[list[float]]:
        batches = [list(conversations[i:i + size]) for i in range(0, len(conversations), size)]
        results: dict[int, list[list[float]]] = {}
        pool.map("score", [(i, (b,)) for i, b in enumerate(batches)], lambda i, out: results.__setitem__(i, out["scores"]))
        return [s for i in range(len(batches)) for s in results[i]]

    return score, pool.shutdown


def log_reward_run(tracking_uri: str, experiment: str, run_name: str, params: dict[str, Any],
                   metrics: dict[str, float], artifacts: Sequence[str] = (), artifact_location: str | None = None) -> str:
    """One MLflow run with params, metrics and artifact files; returns its run id.

    ``artifact_location`` is used when the experiment is created (None: the tracking server's default).
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifact_location=artifact_location)
    run = client.create_run(exp_id, run_name=run_name, tags={"flywheel.kind": "reward"})
    ps = [Param(k, str(v)[:6000]) for k, v in params.items()]
    ms = [Metric(k.replace("/", "."), float(v), 0, 0) for k, v in metrics.items()]
    for i in range(0, max(len(ps), len(ms)), 100):
        client.log_batch(run.info.run_id, params=ps[i:i + 100], metrics=ms[i:i + 100])
    for path in artifacts:
        if os.path.isfile(path):
            client.log_artifact(run.info.run_id, path)
    client.set_terminated(run.info.run_id)
    return run.info.run_id
