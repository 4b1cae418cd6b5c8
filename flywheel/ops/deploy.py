"""Prefect deployments of the round and iterate flows, runnable from the Prefect UI with parameters.

``flywheel deploy`` registers two deployments on a ``process`` work pool (the same ones ``prefect deploy
--all`` makes from prefect.yaml): ``flywheel-round/round`` (parameters ``round_idx``, ``config``,
``overrides``) and ``flywheel-iterate/iterate`` (``first``, ``last``, ``config``, ``overrides``). Their code is
this checkout (a ``set_working_directory`` pull step), so a worker started on this machine runs them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from flywheel.config import check_shipped_overrides
from flywheel.errors import FlywheelError
from flywheel.ops.naming import ACCELERATOR_TAG
from flywheel.ops.services import WORK_POOL

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class DeploymentSpec:
    """One deployment: which flow, its default parameters, and how the worker runs it."""

    flow: str  # flow name, e.g. flywheel-round
    name: str  # deployment name, e.g. round
    entrypoint: str  # path:function, relative to the source directory
    parameters: dict[str, Any]
    description: str
    tags: list[str] = field(default_factory=lambda: ["flywheel"])
    concurrency_limit: int = 1  # rounds of one run share a store: never two at once

    @property
    def full_name(self) -> str:
        return f"{self.flow}/{self.name}"


def specs(config: str | None, overrides: list[str]) -> list[DeploymentSpec]:
    """The round and iterate deployments with ``config``/``overrides`` as their default parameters."""
    check_shipped_overrides(overrides, "the deployments' Prefect parameters")
    common = {"config": config, "overrides": list(overrides)}
    return [
        DeploymentSpec(
            "flywheel-round",
            "round",
            "flows/round.py:round_flow",
            {"round_idx": 1, **common},
            "One round: prompts -> responses -> judge -> datasets -> train -> evaluate -> promote. "
            "Finished stages are skipped, so re-running resumes.",
        ),
        DeploymentSpec(
            "flywheel-iterate",
            "iterate",
            "flows/round.py:iterate_flow",
            {"first": 1, "last": 1, **common},
            "Rounds first..last in order; each generates with the model the previous round promoted.",
        ),
    ]


def job_env() -> dict[str, str]:
    """Environment the worker gives each flow run: offline switches only (credentials stay in the worker's)."""
    from flywheel.rounds import OFFLINE_ENV

    return {**OFFLINE_ENV, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}


def ensure_pool(pool: str = WORK_POOL, accelerator_limit: int = 1) -> None:
    """Create the process work pool and the accelerator tag's concurrency limit if missing."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # a worker created it meanwhile
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        client.create_concurrency_limit(tag=ACCELERATOR_TAG, concurrency_limit=accelerator_limit)


def deploy(deployments: list[DeploymentSpec], pool: str = WORK_POOL, source: str = REPO) -> dict[str, str]:
    """Register the deployments on the Prefect API in ``PREFECT_API_URL``. Returns ``{full_name: id}``."""
    from prefect import flow as prefect_flow

    _require_server()
    ensure_pool(pool)
    ids = {}
    for spec in deployments:
        loaded: Any = prefect_flow.from_source(source=source, entrypoint=spec.entrypoint)
        dep_id = loaded.deploy(
            name=spec.name,
            work_pool_name=pool,
            parameters=spec.parameters,
            job_variables={"env": job_env(), "working_dir": source},
            tags=spec.tags,
            description=spec.description,
            concurrency_limit=spec.concurrency_limit,
            print_next_steps=False,
            ignore_warnings=True,
            build=False,
            push=False,
        )
        ids[spec.full_name] = str(dep_id)
    return ids


def trigger(full_name: str, parameters: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run a deployment with ``parameters`` and wait until it ends (a worker must be polling the pool).

    Returns:
        ``{"id", "name", "state"}`` of the flow run.

    Raises:
        FlywheelError: the run did not complete (failed, crashed, or still running after ``timeout``).
    """
    from prefect.deployments import run_deployment

    _require_server()
    run: Any = run_deployment(full_name, parameters=parameters, timeout=timeout)
    state = run.state.type.value if run.state else "UNKNOWN"
    out = {"id": str(run.id), "name": run.name, "state": state}
    if state != "COMPLETED":
        raise FlywheelError(
            f"deployment {full_name}: flow run {run.name} ended {state}"
            f"{' (' + run.state.message + ')' if run.state and run.state.message else ''}"
        )
    return out


def _require_server() -> None:
    """Deployments live on a server; the ephemeral API would accept them and forget them on exit."""
    from prefect.settings import PREFECT_API_URL

    from flywheel.ops.services import healthy

    api = PREFECT_API_URL.value()
    if not api:
        raise FlywheelError(
            "PREFECT_API_URL is not set: start the server with `flywheel services up` and export the lines it prints"
        )
    if not healthy(f"{api.rstrip('/')}/health"):
        raise FlywheelError(
            f"Prefect server at {api} is not answering: `flywheel services up`, or check PREFECT_API_URL"
        )
