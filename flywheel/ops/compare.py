"""``flywheel compare``: the rounds of a run side by side, from the store or from MLflow, plus a report."""

from __future__ import annotations

import os
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.ops.report import write_report
from flywheel.ops.rows import row, rows_from_store


def rows_from_mlflow(uri: str, experiment: str, stages: list[str], rounds: list[int] | None = None) -> list[dict]:
    """Rows from the MLflow parent runs (one per round) of ``experiment`` at tracking ``uri``."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise FlywheelError(f"MLflow {uri}: no experiment {experiment!r} (has the run started?)")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`flywheel.round` != ''", max_results=5000)
    parents: dict[int, Any] = {}
    for run in runs:
        if "mlflow.parentRunId" in run.data.tags:
            continue
        r = int(run.data.tags["flywheel.round"])
        if (not rounds or r in rounds) and (r not in parents or run.info.start_time > parents[r].info.start_time):
            parents[r] = run
    out = []
    for r in sorted(parents):
        tags = parents[r].data.tags
        promoted = {"True": True, "False": False}.get(tags.get("flywheel.promoted", ""))
        row_ = row(
            r, dict(parents[r].data.metrics), stages, generator=tags.get("flywheel.generator", ""), promoted=promoted
        )
        row_["mlflow_run_id"] = parents[r].info.run_id
        out.append(row_)
    return out


def compare(
    cfg: Any, source: str = "store", out: str | None = None, rounds: list[int] | None = None
) -> tuple[list[dict], dict[str, str]]:
    """Rows for a run's rounds plus the written report (``out`` defaults to ``{run.root}/reports``).

    Args:
        cfg: the run's ``flywheel.config.Config`` (only ``run``, ``tracking`` and the stage list are read).
        source: ``store`` (stage manifests) or ``mlflow`` (the rounds' parent runs).
    """
    from flywheel.rounds import stage_list
    from flywheel.store import Store

    store = Store(cfg.run.root, cfg.run.storage_options)
    stages = stage_list(cfg)
    if source not in ("store", "mlflow"):
        raise FlywheelError(f"--source must be store or mlflow, got {source!r}")
    if not store.rounds():  # before MLflow: opening a sqlite URI would create an empty database
        raise FlywheelError(f"no rounds under {cfg.run.root}: nothing to compare")
    if source == "store":
        rows = rows_from_store(store, stages, rounds)
    elif source == "mlflow":
        from flywheel.tracking import tracking_uri

        uri = tracking_uri(cfg.tracking, store, os.path.expanduser(cfg.run.cache_dir), cfg.run.name)
        rows = rows_from_mlflow(uri, cfg.tracking.experiment or cfg.run.name, stages, rounds)
    if not rows:
        raise FlywheelError(f"no finished stages under {cfg.run.root}: nothing to compare")
    out_uri = out or store.uri("reports")
    if "://" not in out_uri:
        out_uri = os.path.abspath(out_uri)
    paths = write_report(store, out_uri, rows, stages, f"flywheel run {cfg.run.name}: rounds compared")
    return rows, paths
