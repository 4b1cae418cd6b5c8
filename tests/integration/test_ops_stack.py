"""Operating the flywheel for real: Ray job submission, round comparison, Prefect deployments, the UIs.

One run is shared by every test here (it takes minutes): a Ray head is started on 127.0.0.1, ``flywheel
submit`` runs two tiny rounds on it as a Ray job (promotion forced, so round 2 generates with round 1's
candidate), and the head is stopped. Then ``flywheel compare`` reads that run, and ``flywheel services up``
+ ``flywheel deploy --run round`` run the round flow through a real Prefect server and process worker on
the finished round 2 (every stage skips, so the flow run is short).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
TINY = os.path.join(ROOT, "configs", "tiny.yaml")
STAGES = [
    "prompts",
    "dialogues",
    "responses",
    "judge",
    "datasets",
    "sft_code",
    "sft",
    "dpo",
    "rpo_1",
    "evaluate",
    "promote",
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: a single-node head keeps 127.0.0.1 as its node address (Ray
    # otherwise swaps a loopback --node-ip-address for the machine's interface address)
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "OMP_NUM_THREADS": "1",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    env.update(extra)
    return env


def _flywheel(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flywheel.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env or _env(),
        timeout=timeout,
    )


def _manifest(run_root: str, r: int, stage: str) -> dict | None:
    path = os.path.join(run_root, f"round-{r:03d}", stage, "_MANIFEST.json")
    return json.load(open(path)) if os.path.exists(path) else None


def _get(url: str, timeout: float, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _wait_http(url: str, timeout: float, token: str | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with _get(url, 3, token) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@contextlib.contextmanager
def ray_head():
    """``ray start --head --block`` on 127.0.0.1 with its own ports and temp dir; SIGTERM stops exactly it.

    The head runs with Ray's token auth on (a token file of its own, as ``ray get-auth-token --generate``
    writes); yields (dashboard address, env that carries the token's path, the token).
    """
    tmp = tempfile.mkdtemp(prefix="fwray", dir="/tmp")  # short: Ray's unix sockets live under it
    token = secrets.token_hex(32)
    token_path = os.path.join(tmp, "auth_token")
    with open(token_path, "w") as f:
        f.write(token)
    env = _env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token_path)
    dash = _port()
    cmd = [
        os.path.join(BIN, "ray"),
        "start",
        "--head",
        "--block",
        "--port",
        str(_port()),
        "--node-ip-address",
        "127.0.0.1",
        "--dashboard-host",
        "127.0.0.1",
        "--dashboard-port",
        str(dash),
        "--dashboard-agent-listen-port",
        str(_port()),
        "--ray-client-server-port",
        str(_port()),
        "--num-cpus",
        "2",
        "--disable-usage-stats",
        "--temp-dir",
        tmp,
    ]
    log = open(os.path.join(tmp, "ray-start.log"), "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{dash}/api/version", 180, token)
        yield f"http://127.0.0.1:{dash}", env, token
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # only the group this test started
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def submitted_run(tmp_path_factory):
    """Two tiny rounds submitted as one Ray job to a head started here; the head stops once it finished."""
    run_root = str(tmp_path_factory.mktemp("ops") / "run")
    with ray_head() as (address, env, token):
        # a client without the token is refused in one line
        refused = _flywheel("submit", "--address", address, "--no-wait", "--", "status", "-c", TINY, timeout=120)
        t0 = time.time()
        res = _flywheel(
            "submit",
            "--address",
            address,
            "--working-dir",
            ROOT,
            "--timeout",
            "2400",
            "--",
            "iterate",
            "--rounds",
            "2",
            "--no-prefect",
            "--config",
            "configs/tiny.yaml",
            f"run.root={run_root}",
            "eval.always_promote=true",
            env=env,
            timeout=2500,
        )
        seconds = time.time() - t0
        with _get(f"{address}/api/jobs/", 10, token) as resp:
            jobs = [(j["entrypoint"], j["status"]) for j in json.loads(resp.read())]
        nodes = [n.get("nodeManagerAddress") for n in _ray_nodes(address, token)]
    return {"root": run_root, "res": res, "seconds": seconds, "jobs": jobs, "nodes": nodes, "refused": refused}


def _ray_nodes(address: str, token: str) -> list[dict]:
    with _get(f"{address}/nodes?view=summary", 10, token) as resp:
        data = json.loads(resp.read())
    return [n["raylet"] for n in data["data"]["summary"]]


def test_submit_runs_rounds_on_the_ray_head(submitted_run):
    res = submitted_run["res"]
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "submitted Ray job" in res.stdout and "SUCCEEDED" in res.stdout
    # one job, which joined the cluster instead of starting a private Ray, and wrote where it was told
    ((entrypoint, status),) = submitted_run["jobs"]
    assert entrypoint.startswith("python -m flywheel.cli iterate ") and "--rounds 2" in entrypoint
    assert "ray.address=auto" in entrypoint
    assert status == "SUCCEEDED"
    assert submitted_run["nodes"] == ["127.0.0.1"]  # everything stayed on loopback
    # the head runs with token auth: the submitter and the job found the token; a client without it was refused
    refused = submitted_run["refused"]
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert "flywheel: error: Ray cluster" in refused.stderr, refused.stderr[-2000:]
    for r in (1, 2):
        for stage in STAGES:
            assert _manifest(submitted_run["root"], r, stage) is not None, (r, stage)


def test_compare_writes_table_and_chart(submitted_run, tmp_path):
    root = submitted_run["root"]
    res = _flywheel("compare", "--config", TINY, f"run.root={root}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "round 1" in res.stdout and "round 2" in res.stdout and "win rate" in res.stdout
    png = open(os.path.join(root, "reports", "compare.png"), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    page = open(os.path.join(root, "reports", "compare.html")).read()
    # header + the initial model (round 0) + 2 rounds, twice
    assert page.count("<tr>") == 4 + 4 and "data:image/png;base64," in page
    assert "initial:tiny-nemotron" in page
    # the MLflow parent runs give the same numbers as the manifests
    res = _flywheel(
        "compare", "--config", TINY, f"run.root={root}", "--source", "mlflow", "--json", "--out", str(tmp_path / "rep")
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(res.stdout)["rows"]
    assert [r["round"] for r in rows] == [1, 2]
    for r in rows:
        ev = _manifest(root, r["round"], "evaluate")["metrics"]
        ds = _manifest(root, r["round"], "datasets")["metrics"]
        assert r["win rate"] == pytest.approx(ev["win_rate"])
        assert r["pairs"] == ds["preference"]
        assert r["stage_seconds"]["prompts"] == pytest.approx(_manifest(root, r["round"], "prompts")["seconds"])
    assert rows[0]["promoted"] is True
    assert rows[1]["generator"] == _manifest(root, 1, "promote")["outputs"]["generator"]["id"]
    assert (tmp_path / "rep" / "compare.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def services(submitted_run, tmp_path_factory):
    """Prefect server + process worker + MLflow UI on free 127.0.0.1 ports, stopped in teardown."""
    home = str(tmp_path_factory.mktemp("services"))
    ports = {"prefect": _port(), "mlflow": _port()}
    res = _flywheel(
        "services",
        "up",
        "--home",
        home,
        "--prefect-port",
        str(ports["prefect"]),
        "--mlflow-port",
        str(ports["mlflow"]),
        "--config",
        TINY,
        f"run.root={submitted_run['root']}",
    )
    try:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        yield {"home": home, "ports": ports, "up": res.stdout}
    finally:
        down = _flywheel("services", "down", "--home", home)
        assert down.returncode == 0, down.stderr
        assert not [f for f in os.listdir(home) if f.endswith(".json")]


def _prefect_env(svc: dict) -> dict[str, str]:
    home = svc["home"]
    return _env(
        PREFECT_HOME=os.path.join(home, "prefect"),
        PREFECT_API_URL=f"http://127.0.0.1:{svc['ports']['prefect']}/api",
        PREFECT_LOCAL_STORAGE_PATH=os.path.join(home, "prefect", "storage"),
        PREFECT_MEMO_STORE_PATH=os.path.join(home, "prefect", "memo_store.toml"),
    )


def test_deployment_runs_through_server_and_worker(services, submitted_run):
    root = submitted_run["root"]
    env = _prefect_env(services)
    assert f"PREFECT_API_URL=http://127.0.0.1:{services['ports']['prefect']}/api" in services["up"]
    # same overrides as the submitted run (eval.always_promote is in promote's fingerprint), so every stage skips
    res = _flywheel(
        "deploy",
        "--config",
        "configs/tiny.yaml",
        f"run.root={root}",
        "eval.always_promote=true",
        "--run",
        "round",
        "--round",
        "2",
        "--timeout",
        "900",
        env=env,
        timeout=1000,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "deployment flywheel-round/round" in res.stdout and "deployment flywheel-iterate/iterate" in res.stdout
    assert ": COMPLETED" in res.stdout
    check = subprocess.run([sys.executable, "-c", _READ_RUNS], capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    runs = json.loads(check.stdout)
    assert runs["deployments"] == ["iterate", "round"]
    (run,) = runs["flow_runs"]
    assert run["state"] == "COMPLETED" and run["parameters"]["round_idx"] == 2
    assert run["parameters"]["overrides"] == [f"run.root={root}", "eval.always_promote=true"]
    from flywheel.rounds import RUN_STAGES
    from flywheel.rounds import STAGES as FLOW_STAGES

    # the round's stages, and the run-level reward stage (published already: a skip)
    assert len(run["tasks"]) == len(FLOW_STAGES) + len(RUN_STAGES) and all(
        s == "COMPLETED" for s in run["tasks"].values()
    )
    # the stages were already done: the deployment resumed, it did not redo work
    assert _manifest(root, 2, "promote")["finished_at"] < run["start"]


_READ_RUNS = """
import json
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
with get_client(sync_client=True) as c:
    deps = sorted(d.name for d in c.read_deployments())
    out = []
    for fr in c.read_flow_runs():
        tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
        out.append({"name": fr.name, "state": fr.state.type.value, "parameters": fr.parameters,
                    "start": fr.start_time.timestamp(), "tasks": {t.name: t.state.type.value for t in tasks}})
print(json.dumps({"deployments": deps, "flow_runs": out}))
"""


def test_uis_show_the_rounds(services):
    ports = services["ports"]
    page = urllib.request.urlopen(f"http://127.0.0.1:{ports['prefect']}/", timeout=10).read().decode()
    assert "<html" in page.lower()
    from mlflow import MlflowClient

    client = MlflowClient(f"http://127.0.0.1:{ports['mlflow']}")
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id], max_results=500)
    parents = sorted(r.data.tags["flywheel.round"] for r in runs if _is_round_parent(r))
    assert parents == ["1", "2"]
    status = _flywheel("services", "status", "--home", services["home"])
    assert status.returncode == 0 and status.stdout.count(" up ") >= 3, status.stdout


_NAMED_FLOW = """
import json
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from flywheel.ops.naming import round_flow_run_name, stage_task_run_name, task_options

@task(task_run_name=stage_task_run_name)
def stage_task(config, overrides, round_idx, name):
    return name

@flow(name="naming-check", flow_run_name=round_flow_run_name)
def round_flow(round_idx: int, config=None, overrides=None):
    for n in ("prompts", "datasets"):
        stage_task.with_options(name=n, **task_options(n))(config, overrides or [], round_idx, n)

state = round_flow(2, "configs/tiny.yaml", ["run.name=demo"], return_state=True)
with get_client(sync_client=True) as c:
    fr = c.read_flow_run(state.state_details.flow_run_id)
    tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
    print(json.dumps({"flow": fr.name, "tasks": {t.name: sorted(t.tags) for t in tasks}}))
"""


def test_run_names_and_stage_tags_in_a_real_flow(services):
    res = subprocess.run(
        [sys.executable, "-c", _NAMED_FLOW],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_prefect_env(services),
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["flow"] == "demo/round-2"
    assert out["tasks"] == {
        "demo/round-2/prompts": ["flywheel", "flywheel-accelerator", "stage:prompts"],
        "demo/round-2/datasets": ["flywheel", "stage:datasets"],
    }


def _is_round_parent(run) -> bool:
    """A round's parent run (the run-level reward stage has a run of its own, tagged flywheel.run_level)."""
    return "mlflow.parentRunId" not in run.data.tags and "flywheel.round" in run.data.tags
