"""MLflow: a parent run per round, a child run per stage, datasets as inputs, registry aliases.

Embedded default: a sqlite store under the run root (local roots) or the cache dir (remote roots), artifacts
beside it, no server. Point ``tracking.uri`` at a server to share. Uses ``MlflowClient`` only, so nothing
depends on a process-global active run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from flywheel.config import TrackingConfig, redact
from flywheel.errors import FlywheelError
from flywheel.store import Store, round_dir

log = logging.getLogger("flywheel")

for _k, _v in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}.items():
    os.environ.setdefault(_k, _v)


def tracking_uri(tc: TrackingConfig, store: Store, cache_dir: str, run_name: str) -> str:
    if tc.uri:
        return tc.uri
    base = store.path(store.root) if store.is_local else os.path.join(cache_dir, "mlflow", run_name)
    os.makedirs(base, exist_ok=True)
    return f"sqlite:///{os.path.abspath(base)}/mlflow.db"


def check_server(uri: str, timeout: float = 5.0) -> None:
    """One line, at once, when an ``http(s)`` tracking server cannot be reached (MLflow's own client retries
    for minutes and then raises a traceback). Local (sqlite, file) stores need no check."""
    if not uri.startswith(("http://", "https://")):
        return
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except OSError as err:
        raise FlywheelError(f"MLflow tracking server {redact(uri)} unreachable: {err}") from None


class Tracker:
    """Logs rounds and stages of one flywheel run to one MLflow experiment."""

    def __init__(self, tc: TrackingConfig, store: Store, cache_dir: str, run_name: str, params: dict | None = None):
        from mlflow import MlflowClient

        self.tc, self.store = tc, store
        self.uri = tracking_uri(tc, store, cache_dir, run_name)
        check_server(self.uri)
        self.client = MlflowClient(self.uri)
        name = tc.experiment or run_name
        try:
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                artifacts = store.uri("mlflow-artifacts") if not tc.uri else None
                self.experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
            else:
                self.experiment_id = exp.experiment_id
        except Exception as err:  # MlflowException: a server that answers but refuses (auth, version)
            raise FlywheelError(f"MLflow at {redact(self.uri)}: {type(err).__name__}: {err}"[:500]) from None
        self.params = params or {}
        self._parents: dict[int, str] = {}

    # -- runs -----------------------------------------------------------------------------------
    def round_run(self, round_idx: int, generator: dict) -> str:
        """The round's parent run id; reused across restarts (its id is kept in the store)."""
        if round_idx in self._parents:
            return self._parents[round_idx]
        ref = self.store.uri(round_dir(round_idx), "_mlflow.json")
        run_id = self.store.read_json(ref)["run_id"] if self.store.exists(ref) else None
        if run_id is not None and not self._has_run(run_id):
            # a remote root resumed on another machine, whose default (local) tracking store never saw it
            log.info(
                "round %d: MLflow run %s is not in %s; the round gets a new run", round_idx, run_id, redact(self.uri)
            )
            run_id = None
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                self.experiment_id,
                run_name=f"round-{round_idx}",
                tags={"flywheel.round": str(round_idx), "flywheel.generator": generator["id"]},
            )
            run_id = run.info.run_id
            self._log(run_id, params={"generator_uri": generator["uri"], **_flat(self.params)})
            self.store.write_json(ref, {"run_id": run_id, "tracking_uri": redact(self.uri)})
        self._parents[round_idx] = run_id
        return run_id

    def _has_run(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
            return True
        except Exception:  # MlflowException RESOURCE_DOES_NOT_EXIST
            return False

    def end_round(self, round_idx: int, status: str = "FINISHED") -> None:
        if round_idx in self._parents:
            self.client.set_terminated(self._parents[round_idx], status=status)

    def log_stage(self, round_idx: int, stage: str, manifest: dict) -> None:
        """A child run per stage: fingerprint, seconds, numeric metrics, output datasets as inputs."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        parent = self._parents.get(round_idx)
        if round_idx == 0:  # a run-level stage (the reward model): a run of its own, outside every round
            tags = {"flywheel.run_level": "true", "flywheel.stage": stage}
        else:
            tags = {"flywheel.round": str(round_idx), "flywheel.stage": stage}
        if parent:
            tags["mlflow.parentRunId"] = parent
        name = f"run/{stage}" if round_idx == 0 else f"round-{round_idx}/{stage}"
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        metrics = {k: v for k, v in manifest.get("metrics", {}).items() if isinstance(v, (int, float))}
        if manifest.get("seconds") is not None:
            metrics["stage_seconds"] = manifest["seconds"]
        self._log(
            run.info.run_id,
            params={"fingerprint": manifest["fingerprint"], **manifest.get("inputs", {})},
            metrics=metrics,
        )
        datasets = []
        for name, out in manifest.get("outputs", {}).items():
            if isinstance(out, dict) and "parts" in out:
                digest = "".join(p["sha256"][:8] for p in out["parts"])[:32]
                source = json.dumps({"uris": [p["uri"] for p in out["parts"]]})
                ds = Dataset(
                    name=f"{stage}/{name}",
                    digest=digest,
                    source_type="flywheel-store",
                    source=source,
                    profile=json.dumps({"num_rows": out.get("count", 0)}),
                )
                datasets.append(DatasetInput(ds, tags=[InputTag("mlflow.data.context", stage)]))
        if datasets:
            self.client.log_inputs(run.info.run_id, datasets=datasets)
        self.client.set_terminated(run.info.run_id)
        if parent and metrics:
            self._log(parent, metrics={f"{stage}/{k}": v for k, v in metrics.items()})

    def register(
        self, round_idx: int, candidate: dict, promoted: bool, reason: str, tags: dict[str, str] | None = None
    ) -> str:
        """Register round ``round_idx``'s candidate once and return its version; a rerun finds that version.

        ``tags`` (each suite's delta and interval) go on the version and on the round's run. Aliases are set
        apart, by :meth:`set_aliases`, from what the store says.
        """
        name = self.tc.registered_model
        try:
            self.client.get_registered_model(name)
        except Exception:
            self.client.create_registered_model(name)
        mv = self._round_version(round_idx, candidate["uri"])
        if mv is None:
            mv = self.client.create_model_version(
                name,
                source=candidate["uri"],
                run_id=self._parents.get(round_idx),
                tags={"flywheel.round": str(round_idx), "promoted": str(promoted), **(tags or {})},
            )
            log.info("round %d: candidate registered as %s v%s", round_idx, name, mv.version)
        parent = self._parents.get(round_idx)
        if parent:
            self.client.set_tag(parent, "flywheel.promoted", str(promoted))
            self.client.set_tag(parent, "flywheel.promotion_reason", reason[:5000])
            for k, v in (tags or {}).items():
                self.client.set_tag(parent, k, v)
        return str(mv.version)

    def _round_version(self, round_idx: int, uri: str) -> Any:
        name = self.tc.registered_model
        for mv in self.client.search_model_versions(f"name='{name}'"):
            if mv.tags.get("flywheel.round") == str(round_idx) and mv.source == uri:
                return mv
        return None

    def set_aliases(self, candidate: str | None, generator: str | None) -> None:
        """``@candidate`` and ``@generator`` to these versions; None removes the alias (the initial model is no
        registered version)."""
        name = self.tc.registered_model
        for alias, version in (("candidate", candidate), ("generator", generator)):
            if version is not None:
                self.client.set_registered_model_alias(name, alias, version)
                continue
            with contextlib.suppress(Exception):  # no such alias (or no model yet): nothing to remove
                self.client.delete_registered_model_alias(name, alias)

    def log_round_metrics(self, round_idx: int, metrics: dict[str, float]) -> None:
        """Metrics on the round's parent run (no-op before the round has one)."""
        parent = self._parents.get(round_idx)
        if parent:
            self._log(parent, metrics=metrics)

    def _log(self, run_id: str, params: dict | None = None, metrics: dict | None = None) -> None:
        log_batch(self.client, run_id, params, metrics)


def log_batch(client: Any, run_id: str, params: dict | None = None, metrics: dict | None = None) -> None:
    """Params and metrics in batches of 100 (MLflow's limit); ``/`` in metric names becomes ``.``."""
    from mlflow.entities import Metric, Param

    ps = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
    ms = [Metric(k.replace("/", "."), float(v), 0, 0) for k, v in (metrics or {}).items()]
    for i in range(0, max(len(ps), len(ms)), 100):
        client.log_batch(run_id, params=ps[i : i + 100], metrics=ms[i : i + 100])


def log_reward_run(
    uri: str,
    experiment: str,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: Sequence[str] = (),
    artifact_location: str | None = None,
) -> str:
    """One MLflow run of ``flywheel reward`` with params, metrics and artifact files; returns its run id.

    ``artifact_location`` is used when the experiment is created (None: the tracking server's default).
    """
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifact_location=artifact_location)
    run = client.create_run(exp_id, run_name=run_name, tags={"flywheel.kind": "reward"})
    log_batch(client, run.info.run_id, params, metrics)
    for path in artifacts:
        if os.path.isfile(path):
            client.log_artifact(run.info.run_id, path)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = redact(v)  # a tracking or store URI may carry a password
    return out
