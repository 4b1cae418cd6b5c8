"""``flywheel submit``: run a flywheel command as a Ray job on a cluster (Ray job submission API).

The job's working directory is this checkout (uploaded by Ray, minus venvs, runs and caches); its entrypoint
is ``python -m flywheel.cli <command> ray.address=auto`` so the job's engines and trainers join the
cluster instead of starting a private Ray. Credentials never travel in the runtime env (the Ray dashboard
shows it to anyone who can open it): the cluster's own environment / IAM role provides them.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import urlparse

from flywheel.config import check_shipped_overrides, secret_name
from flywheel.errors import FlywheelError

# Never uploaded: virtualenvs, run outputs, VCS metadata and caches (Ray caps a working_dir package size), and
# environment files, which hold secrets (infra/services/.env).
EXCLUDES = [
    ".env",
    "**/.env",
    "*.env",
    ".venv",
    "venv",
    ".git",
    "runs",
    "mlruns",
    "**/__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "build",
    "dist",
    "*.safetensors",
    "*.gguf",
]
# Commands that read a run config and may start engines: they get ``ray.address=auto``.
CONFIG_COMMANDS = ("iterate", "stage")
COMMANDS = ("iterate", "stage", "status", "compare")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_env(env: dict[str, str]) -> None:
    """Refuse secret-looking variables: a runtime env is visible in the Ray dashboard and job metadata."""
    bad = sorted(k for k in env if secret_name(k))
    if bad:
        raise FlywheelError(
            f"--env {bad[0]}: credentials must come from the cluster's environment or IAM role, "
            "never from the job's runtime env (it is shown in the Ray dashboard)"
        )


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``["K=V", ...]`` -> dict, checked for secrets."""
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FlywheelError(f"--env {pair!r} is not KEY=VALUE")
        env[key] = value
    check_env(env)
    return env


def is_loopback(address: str) -> bool:
    host = urlparse(address if "://" in address else f"http://{address}").hostname or ""
    return host in _LOOPBACK


def job_command(command: list[str], address: str, root: str | None) -> list[str]:
    """The flywheel arguments the job runs: ``ray.address=auto`` added, a relative run root made absolute.

    Args:
        command: flywheel arguments, e.g. ``["iterate", "--round", "1", "--config", "configs/tiny.yaml"]``.
        root: the command's resolved ``run.root`` (None for commands without a config).

    Raises:
        FlywheelError: unknown command, or a relative run root on a remote cluster (it would land in the
            job's temporary working directory and vanish with it).
    """
    if not command or command[0] not in COMMANDS:
        raise FlywheelError(f"submit: command must be one of {', '.join(COMMANDS)}, got {command[:1] or 'nothing'}")
    check_shipped_overrides(split_command(command)[1], "the Ray job's entrypoint")
    out = list(command)
    if command[0] in CONFIG_COMMANDS and not any(a.startswith("ray.address=") for a in out):
        out.append("ray.address=auto")
    if root is not None and "://" not in root and not os.path.isabs(os.path.expanduser(root)):
        if not is_loopback(address):
            raise FlywheelError(
                f"run.root={root!r} is relative: on a cluster use s3://bucket/prefix or a shared "
                "absolute path (run.root=...)"
            )
        out.append(f"run.root={os.path.abspath(root)}")
    return out


def runtime_env(working_dir: str, env: dict[str, str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job's runtime env: the checkout as working dir, offline switches, user env (no secrets)."""
    from flywheel.rounds import OFFLINE_ENV

    check_env(env)
    extra = dict(extra or {})
    check_env(extra.get("env_vars", {}))
    rt = {
        **extra,
        "working_dir": os.path.abspath(working_dir),
        "excludes": [*EXCLUDES, *extra.get("excludes", [])],
        "env_vars": {**OFFLINE_ENV, "PYTHONUNBUFFERED": "1", **extra.get("env_vars", {}), **env},
    }
    return rt


# Options of the submitted commands that take a value (so ``--config a=b.yaml`` is not read as an override).
_VALUE_OPTIONS = ("--config", "-c", "--round", "--rounds", "--source", "--out")


def split_command(command: list[str]) -> tuple[list[str], list[str], list[str]]:
    """``command`` -> (positionals, ``key=value`` overrides, options with their values), order kept in each."""
    positionals, overrides, options = [], [], []
    it = iter(command)
    for arg in it:
        if arg.startswith("-"):
            options.append(arg)
            if arg in _VALUE_OPTIONS:
                options.append(next(it, ""))
        elif "=" in arg:
            overrides.append(arg)
        else:
            positionals.append(arg)
    return positionals, overrides, options


def normalize(command: list[str]) -> list[str]:
    """Overrides right after the positionals (``stage NAME k=v --round 1``), the order argparse reads whole."""
    positionals, overrides, options = split_command(command)
    return [*positionals, *overrides, *options]


def resolve_root(command: list[str]) -> str | None:
    """The command's config ``run.root`` (loading, hence validating, its config and overrides here)."""
    if command[0] not in CONFIG_COMMANDS:
        return None
    from flywheel.config import load_config

    _, overrides, options = split_command(command)
    config = next((options[i + 1] for i, o in enumerate(options[:-1]) if o in ("--config", "-c")), None)
    return load_config(config, overrides).run.root


def token_auth(environ: MutableMapping[str, str] | None = None) -> bool:
    """Speak Ray's token auth when a token is at hand and ``RAY_AUTH_MODE`` is not set.

    A head started with ``RAY_AUTH_MODE=token`` refuses clients without the token, and Ray's client only sends
    one in token mode; a head without auth accepts a client that sends one. The token itself stays where Ray
    reads it (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) and is never printed.
    Must run before Ray is first used in this process (Ray reads the mode once).
    """
    environ = os.environ if environ is None else environ
    if "RAY_AUTH_MODE" in environ:
        return environ["RAY_AUTH_MODE"] == "token"
    found = bool(environ.get("RAY_AUTH_TOKEN") or environ.get("RAY_AUTH_TOKEN_PATH"))
    if found or os.path.exists(os.path.expanduser("~/.ray/auth_token")):
        environ["RAY_AUTH_MODE"] = "token"
        return True
    return False


def submit(
    address: str,
    command: list[str],
    working_dir: str = ".",
    env: dict[str, str] | None = None,
    extra_runtime_env: dict[str, Any] | None = None,
    python: str = "python",
    num_cpus: float | None = None,
) -> tuple[Any, str]:
    """Submit ``flywheel <command>`` as a Ray job. Returns (client, submission id)."""
    token_auth()
    from ray.job_submission import JobSubmissionClient

    cmd = normalize(job_command(command, address, resolve_root(command)))
    entrypoint = shlex.join([python, "-m", "flywheel.cli", *cmd])
    try:
        client = JobSubmissionClient(address)
    except Exception as err:  # connection refused, auth mismatch: one line, no traceback
        raise FlywheelError(f"Ray cluster {address}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    try:
        job_id = client.submit_job(
            entrypoint=entrypoint,
            runtime_env=runtime_env(working_dir, env or {}, extra_runtime_env),
            metadata={"flywheel.command": " ".join(command[:1])},
            entrypoint_num_cpus=num_cpus,
        )
    except FlywheelError:
        raise
    except Exception as err:  # refused upload, auth, a cluster that went away
        raise FlywheelError(f"Ray cluster {address}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    return client, job_id


def wait(
    client: Any, job_id: str, timeout: float | None = None, echo: Callable[[str], None] = print, poll: float = 2.0
) -> str:
    """Follow the job's log until it ends. Returns its final status.

    Raises:
        FlywheelError: the job failed or was stopped, or ``timeout`` passed (the job keeps running then).
    """
    from ray.job_submission import JobStatus

    seen, t0 = 0, time.time()
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        if len(logs) > seen:
            echo(logs[seen:].rstrip("\n"))
            seen = len(logs)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            break
        if timeout is not None and time.time() - t0 > timeout:
            raise FlywheelError(
                f"job {job_id} still {status.value} after {timeout:.0f}s (stop it with `ray job stop {job_id}`)"
            )
        time.sleep(poll)
    if status != JobStatus.SUCCEEDED:
        info = client.get_job_info(job_id)
        raise FlywheelError(
            f"job {job_id} {status.value}: {(info.message or '').splitlines()[0] if info.message else ''}"
        )
    return status.value
