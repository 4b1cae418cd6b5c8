"""Fixed costs: time a run spends starting things rather than computing, counted per kind in this process.

The round summary (:func:`flywheel.rounds.finish_round`) breaks its overhead down with them:

* ``engine_start``: vLLM engine actors created and loaded (:class:`flywheel.engines.cache.EngineCache`);
* ``train_start``: the part of a Ray Train fit spent outside its jobs (worker group, process group, teardown);
* ``model_load``: loading the policy inside training jobs;
* orchestration: what remains of the round's wall time beyond its stages' own durations (Prefect, MLflow,
  manifests, the glue between stages).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

KINDS = ("engine_start", "train_start", "model_load")
_LOCK = threading.Lock()
_TOTALS: dict[str, float] = dict.fromkeys(KINDS, 0.0)


def add(kind: str, seconds: float) -> None:
    """Count ``seconds`` of fixed cost of ``kind`` (one of :data:`KINDS`)."""
    with _LOCK:
        _TOTALS[kind] += max(0.0, float(seconds))


def snapshot() -> dict[str, float]:
    """The totals so far (pass to :func:`breakdown` as ``before`` to count what came after)."""
    with _LOCK:
        return dict(_TOTALS)


def breakdown(wall: float, stage_seconds: float, before: Mapping[str, float]) -> dict[str, float]:
    """The round's overhead by kind and as a share of ``wall``.

    Args:
        wall: the round's wall time.
        stage_seconds: the sum of its stages' own durations (engine starts and model loads included).
        before: :func:`snapshot` at the round's start.
    """
    now = snapshot()
    fixed = {k: now[k] - float(before.get(k, 0.0)) for k in KINDS}
    orchestration = max(0.0, wall - stage_seconds - fixed["train_start"])
    overhead = sum(fixed.values()) + orchestration
    out = {f"fixed/{k}_seconds": round(v, 2) for k, v in fixed.items()}
    out["fixed/orchestration_seconds"] = round(orchestration, 2)
    out["overhead_share"] = round(min(1.0, overhead / wall), 4) if wall > 0 else 0.0
    return out
