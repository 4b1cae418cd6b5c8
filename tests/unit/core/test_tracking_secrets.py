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
