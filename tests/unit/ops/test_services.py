import os
import socket
import sys

import pytest

from flywheel.errors import FlywheelError
from flywheel.ops import services


def test_plan_binds_loopback_and_keeps_prefect_state_in_home(tmp_path):
    plan = services.plan(str(tmp_path), 4300, 5300, tracking_uri="sqlite:////r/mlflow.db")
    assert [s.name for s in plan] == ["prefect-server", "prefect-worker", "mlflow"]
    server, worker, mlflow = plan
    assert server.argv[1:] == ["server", "start", "--host", "127.0.0.1", "--port", "4300"]
    assert server.health == "http://127.0.0.1:4300/api/health"
    assert worker.env["PREFECT_API_URL"] == "http://127.0.0.1:4300/api"
    assert worker.env["PREFECT_HOME"] == os.path.join(str(tmp_path), "prefect")
    assert "--pool" in worker.argv and "process" in worker.argv
    assert mlflow.argv[1:8] == [
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        "5300",
        "--backend-store-uri",
        "sqlite:////r/mlflow.db",
    ]
    assert [s.name for s in services.plan(str(tmp_path), worker=False)] == ["prefect-server"]
    with pytest.raises(FlywheelError, match="already a server"):
        services.plan(str(tmp_path), tracking_uri="http://127.0.0.1:5000")


def test_start_waits_for_health_then_stop_ends_exactly_that_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    svc = services.Service(
        "web",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        url=f"http://127.0.0.1:{port}",
        health=f"http://127.0.0.1:{port}/",
    )
    home = str(tmp_path / "home")
    (rec,) = services.start([svc], home, cwd=str(tmp_path), timeout=30)
    assert "env" not in rec and os.path.exists(rec["log"])
    (listed,) = services.recorded(home)
    assert listed["alive"] and listed["healthy"]
    # starting again keeps the running one
    assert services.start([svc], home, cwd=str(tmp_path), timeout=30)[0]["pid"] == rec["pid"]
    assert services.stop(home) == ["web"]
    assert services.recorded(home) == []
    with pytest.raises(ProcessLookupError):
        os.kill(rec["pid"], 0)


def test_start_reports_a_service_that_exits(tmp_path):
    svc = services.Service("bad", [sys.executable, "-c", "raise SystemExit(3)"], url="-", health="http://127.0.0.1:9/")
    with pytest.raises(FlywheelError, match="bad exited with code 3"):
        services.start([svc], str(tmp_path), cwd=str(tmp_path), timeout=30)
    services.stop(str(tmp_path))


def test_shell_exports(tmp_path):
    lines = services.shell_exports(str(tmp_path), 4300).splitlines()
    assert "export PREFECT_API_URL=http://127.0.0.1:4300/api" in lines
    assert f"export PREFECT_HOME={tmp_path}/prefect" in lines
