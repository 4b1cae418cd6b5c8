"""Secrets never reach MLflow or the store: a password in a configured URI is redacted in params."""

from flywheel.config import TrackingConfig
from flywheel.store import Store
from flywheel.tracking import Tracker


def test_round_params_and_reference_carry_no_password(tmp_path):
    store = Store(str(tmp_path / "run"))
    params = {"tracking": {"uri": "https://alice:s3cr3t@mlflow.example.com"}, "run": {"root": "s3://b/x"}}
    tracker = Tracker(TrackingConfig(), store, str(tmp_path / "cache"), "t", params=params)
    run_id = tracker.round_run(1, {"id": "g", "uri": "runs/g"})
    logged = tracker.client.get_run(run_id).data.params
    assert logged["tracking.uri"] == "https://alice:***@mlflow.example.com" and logged["run.root"] == "s3://b/x"
    assert "s3cr3t" not in (tmp_path / "run" / "round-001" / "_mlflow.json").read_text()


def test_a_round_resumed_where_the_tracking_store_never_saw_it_gets_a_new_run(tmp_path):
    """A remote root resumed on another machine: its _mlflow.json names a run this (local) MLflow lacks."""
    store = Store(str(tmp_path / "run"))
    first = Tracker(TrackingConfig(), store, str(tmp_path / "cache"), "t").round_run(1, {"id": "g", "uri": "g"})
    other = Tracker(TrackingConfig(uri=f"sqlite:///{tmp_path}/elsewhere.db"), store, str(tmp_path / "c2"), "t")
    second = other.round_run(1, {"id": "g", "uri": "g"})
    assert second != first and other.client.get_run(second).info.status == "RUNNING"
    assert store.read_json(store.uri("round-001", "_mlflow.json"))["run_id"] == second
    again = Tracker(TrackingConfig(uri=f"sqlite:///{tmp_path}/elsewhere.db"), store, str(tmp_path / "c2"), "t")
    assert again.round_run(1, {"id": "g", "uri": "g"}) == second  # and is reused from then on


def test_an_unreachable_tracking_server_is_one_line_at_once(tmp_path):
    import socket
    import time

    import pytest

    from flywheel.errors import FlywheelError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://bob:hunter2@127.0.0.1:{port}"
    t0 = time.monotonic()
    with pytest.raises(
        FlywheelError, match=r"MLflow tracking server http://bob:\*\*\*@127\.0\.0\.1:\d+ unreachable"
    ) as err:
        Tracker(TrackingConfig(uri=uri), Store(str(tmp_path / "run")), str(tmp_path / "c"), "t")
    assert time.monotonic() - t0 < 30 and "hunter2" not in str(err.value)
