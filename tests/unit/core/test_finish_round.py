import time

import pytest

from flywheel.config import load_config
from flywheel.rounds import Run, finish_round
from flywheel.store import Store


class LockedTracker:
    """A tracker whose store fails the way SQLite does after a write was cut short by Ctrl-C."""

    def log_round_metrics(self, round_idx, metrics):
        raise RuntimeError("(sqlite3.OperationalError) database is locked")

    def end_round(self, round_idx, status):
        pass


def _run(tmp_path):
    cfg = load_config("configs/tiny.yaml", [f"run.root={tmp_path}"])
    return Run(cfg=cfg, store=Store(str(tmp_path)), tracker=LockedTracker())


@pytest.mark.parametrize("status", ["FAILED", "KILLED"])
def test_a_round_ending_on_an_error_keeps_that_error_when_mlflow_cannot_record_it(tmp_path, status, caplog):
    summary = finish_round(_run(tmp_path), 1, time.time() - 1.0, status)
    assert summary["round_wall_seconds"] >= 1.0
    assert "could not record the" in caplog.text and "database is locked" in caplog.text


def test_a_finished_round_that_mlflow_cannot_record_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="database is locked"):
        finish_round(_run(tmp_path), 1, time.time() - 1.0, "FINISHED")
