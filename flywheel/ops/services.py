"""Local operating services on 127.0.0.1: a Prefect server + process worker and an MLflow UI.

``flywheel services up`` starts them as background processes (own session, logs and pid files under
``home``), waits until each answers its health URL and prints what to open. ``down`` stops exactly the
processes recorded in the pid files. Nothing here is needed to run rounds: the embedded default (Prefect's
ephemeral API, MLflow sqlite under the run root) needs no server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field

from flywheel.errors import FlywheelError

HOST = "127.0.0.1"
WORK_POOL = "flywheel"


@dataclass
class Service:
    """One background process: how to start it, where a person looks, and how to tell it is ready."""

    name: str
    argv: list[str]
    url: str
    health: str
    env: dict[str, str] = field(default_factory=dict)


def _bin(name: str) -> str:
    """The console script installed beside this interpreter (the venv's ``prefect``/``mlflow``)."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    return path if os.path.exists(path) else name


def prefect_env(home: str, api_url: str | None) -> dict[str, str]:
    """Environment that keeps Prefect's database, results and profile under ``home`` and offline."""
    env = {
        "PREFECT_HOME": os.path.join(home, "prefect"),
        "PREFECT_LOCAL_STORAGE_PATH": os.path.join(home, "prefect", "storage"),
        "PREFECT_MEMO_STORE_PATH": os.path.join(home, "prefect", "memo_store.toml"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def plan(
    home: str,
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    tracking_uri: str | None = None,
    pool: str = WORK_POOL,
    worker: bool = True,
) -> list[Service]:
    """The services to start, in order. ``tracking_uri=None`` leaves MLflow out.

    Args:
        home: state directory (Prefect database, logs, pid files).
        tracking_uri: the MLflow backend store the UI reads (e.g. the run's ``sqlite:///{root}/mlflow.db``).
    """
    api = f"http://{HOST}:{prefect_port}/api"
    out = [
        Service(
            "prefect-server",
            [_bin("prefect"), "server", "start", "--host", HOST, "--port", str(prefect_port)],
            url=f"http://{HOST}:{prefect_port}",
            health=f"{api}/health",
            env=prefect_env(home, None),
        )
    ]
    if worker:
        out.append(
            Service(
                "prefect-worker",
                [_bin("prefect"), "worker", "start", "--pool", pool, "--type", "process", "--name", f"{pool}-local"],
                url=api,
                health=f"{api}/health",
                env=prefect_env(home, api),
            )
        )
    if tracking_uri:
        if tracking_uri.startswith(("http://", "https://")):
            raise FlywheelError(f"tracking.uri {tracking_uri!r} is already a server: open it directly")
        out.append(
            Service(
                "mlflow",
                [
                    _bin("mlflow"),
                    "server",
                    "--host",
                    HOST,
                    "--port",
                    str(mlflow_port),
                    "--backend-store-uri",
                    tracking_uri,
                    "--workers",
                    "1",
                ],
                url=f"http://{HOST}:{mlflow_port}",
                health=f"http://{HOST}:{mlflow_port}/health",
                env={
                    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                    "MLFLOW_DISABLE_TELEMETRY": "true",
                    "DO_NOT_TRACK": "true",
                },
            )
        )
    return out


def _pidfile(home: str, name: str) -> str:
    return os.path.join(home, f"{name}.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def recorded(home: str) -> list[dict]:
    """The services started from ``home`` (pid file contents) with ``alive``/``healthy`` filled in."""
    rows: list[dict] = []
    if not os.path.isdir(home):
        return rows
    for fn in sorted(os.listdir(home)):
        if fn.endswith(".json"):
            with open(os.path.join(home, fn)) as f:
                rec = json.load(f)
            rec["alive"] = _alive(rec["pid"])
            rec["healthy"] = rec["alive"] and healthy(rec["health"])
            rows.append(rec)
    return rows


def start(services: list[Service], home: str, cwd: str, timeout: float = 180.0) -> list[dict]:
    """Start each service in order and wait for its health URL; a service already running is kept.

    Raises:
        FlywheelError: a service exited or did not answer in ``timeout`` seconds (names its log file).
    """
    os.makedirs(home, exist_ok=True)
    running = {r["name"]: r for r in recorded(home) if r["alive"]}
    started = []
    for svc in services:
        if svc.name in running:
            started.append(running[svc.name])
            continue
        log_path = os.path.join(home, f"{svc.name}.log")
        env = {**os.environ, **svc.env}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                svc.argv,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        rec = {**asdict(svc), "pid": proc.pid, "log": log_path, "started_at": time.time()}
        rec.pop("env")  # the pid file records what runs where, never the environment
        with open(_pidfile(home, svc.name), "w") as f:
            json.dump(rec, f, indent=2)
        deadline = time.time() + timeout
        while not healthy(svc.health):
            if proc.poll() is not None:
                raise FlywheelError(f"{svc.name} exited with code {proc.returncode}; see {log_path}")
            if time.time() > deadline:
                raise FlywheelError(f"{svc.name} did not answer {svc.health} within {timeout:.0f}s; see {log_path}")
            time.sleep(1.0)
        started.append(rec)
    return started


def stop(home: str, grace: float = 20.0) -> list[str]:
    """Stop the services recorded under ``home`` (their process groups), newest first. Returns their names."""
    stopped = []
    for rec in sorted(recorded(home), key=lambda r: r["started_at"], reverse=True):
        pid = rec["pid"]
        if rec["alive"]:
            _signal_group(pid, signal.SIGTERM)
            deadline = time.time() + grace
            while _alive(pid) and time.time() < deadline:
                _reap(pid)
                time.sleep(0.3)
            if _alive(pid):
                _signal_group(pid, signal.SIGKILL)
                _reap(pid)
            stopped.append(rec["name"])
        os.remove(_pidfile(home, rec["name"]))
    return stopped


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # each service leads its own session: its children (uvicorn, flow runs) go too


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def shell_exports(home: str, prefect_port: int) -> str:
    """Lines to paste into a shell so ``flywheel iterate`` and ``prefect`` talk to the local server."""
    env = prefect_env(home, f"http://{HOST}:{prefect_port}/api")
    keys = ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOCAL_STORAGE_PATH", "PREFECT_MEMO_STORE_PATH")
    return "\n".join(f"export {k}={env[k]}" for k in keys)
