"""How rounds and stages show up in Prefect: run names, tags, retries, concurrency limits.

The round flow uses these so the Prefect UI reads ``tiny / round-2 / judge`` and so accelerator stages
(vLLM engines, Ray Train) never run two at a time on one machine, whatever deployments are triggered.
"""

from __future__ import annotations

from typing import Any

# Stages that hold accelerators (vLLM engine pools, Ray Train workers): one at a time per tag limit.
ACCELERATOR_TAG = "flywheel-accelerator"
ACCELERATOR_STAGES = frozenset({"prompts", "dialogues", "responses", "judge", "train", "evaluate"})
# Stages that only move data on the store (S3 hiccups, registry calls): cheap to retry, often.
IO_STAGES = frozenset({"datasets", "promote"})

# Every stage is idempotent (skip-if-done, finished parts reused), so a retry never redoes finished work.
# Accelerator stages retry once: a second failure is a real one and retrying would only burn hours.
IO_RETRIES, ACCELERATOR_RETRIES, RETRY_DELAY_SECONDS = 3, 1, 10


def run_label(run_name: str, round_idx: int, stage: str | None = None) -> str:
    """``tiny/round-2`` or ``tiny/round-2/judge``: the run, the round and the stage, in that order."""
    label = f"{run_name}/round-{round_idx}"
    return f"{label}/{stage}" if stage else label


def task_options(stage: str) -> dict[str, Any]:
    """Prefect ``task.with_options`` keywords for a stage: tags (concurrency limits) and retries."""
    tags = ["flywheel", f"stage:{stage}"]
    if stage in ACCELERATOR_STAGES:
        tags.append(ACCELERATOR_TAG)
    retries = IO_RETRIES if stage in IO_STAGES else ACCELERATOR_RETRIES
    return {
        "tags": tags,
        "retries": retries,
        "retry_delay_seconds": RETRY_DELAY_SECONDS,
        "retry_condition_fn": retry_transient,
    }


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a stage that failed on a transient error; never one that failed on bad input or config (a
    FlywheelError: that retries the same) nor one stopped by a signal (Ctrl-C, SIGTERM: the run is stopping)."""
    from flywheel.errors import FlywheelError, Terminated

    if Terminated.received:
        return False
    try:
        state.result()
    except FlywheelError:
        return False
    except Exception:
        return True
    except BaseException:  # KeyboardInterrupt, SystemExit, Prefect's TerminationSignal
        return False
    return True


def _run_name(config: str | None, overrides: list[str] | None) -> str:
    from flywheel.config import load_config

    try:
        return load_config(config, list(overrides or [])).run.name
    except Exception:  # a bad config fails the flow itself with a clear error; the name must not
        return "flywheel"


def round_flow_run_name() -> str:
    """Flow-run name for the round flow, from its parameters (``flow_run_name=round_flow_run_name``)."""
    from prefect.runtime import flow_run

    p = flow_run.parameters
    return run_label(_run_name(p.get("config"), p.get("overrides")), int(p.get("round_idx", 0)))


def iterate_flow_run_name() -> str:
    """Flow-run name for the iterate flow: ``tiny/rounds-1-3``."""
    from prefect.runtime import flow_run

    p = flow_run.parameters
    return f"{_run_name(p.get('config'), p.get('overrides'))}/rounds-{p.get('first', 1)}-{p.get('last', 1)}"


def stage_task_run_name() -> str:
    """Task-run name for a stage task: ``tiny/round-2/judge``."""
    from prefect.runtime import task_run

    p = task_run.parameters
    return run_label(_run_name(p.get("config"), p.get("overrides")), int(p.get("round_idx", 0)), p.get("name"))
