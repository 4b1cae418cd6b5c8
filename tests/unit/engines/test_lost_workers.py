"""Which Ray Train failures restart a fit: a worker process that died or never started, not the code's errors."""

from __future__ import annotations

import pytest

from flywheel.engines.ray_train import lost_worker_reason


def _group_error(failure: BaseException) -> BaseException:
    from ray.train import WorkerGroupError

    return WorkerGroupError("Training failed due to worker errors", {0: failure})


def test_a_killed_worker_is_a_lost_worker():
    from ray.exceptions import ActorDiedError
    from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

    died = _group_error(WorkerHealthCheckFailedError("A worker health check failed.", ActorDiedError()))
    assert "died" in (lost_worker_reason(died) or "")
    assert "died" in (lost_worker_reason(_group_error(ActorDiedError())) or "")


def test_a_group_that_did_not_start_is_a_lost_worker():
    from ray.train.v2._internal.exceptions import WorkerGroupStartupTimeoutError

    err = WorkerGroupStartupTimeoutError(num_workers=1)
    assert "did not start" in (lost_worker_reason(err) or "")


@pytest.mark.parametrize("failure", [ValueError("bad row 3"), RuntimeError("CUDA error"), KeyError("labels")])
def test_an_error_of_the_training_code_is_not_retried(failure):
    assert lost_worker_reason(_group_error(failure)) is None
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = failure
    assert lost_worker_reason(_group_error(wrapped)) is None


def _policy(monkeypatch, tmp_path, failures: list[BaseException]):
    """run_training with each fit failing with the next of ``failures``, then succeeding; returns the fit count."""
    from types import SimpleNamespace

    from flywheel.engines import ray_train

    calls = []

    def fit(*args):
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return SimpleNamespace(return_value={"sft": {"wall_seconds": 0.0}})

    monkeypatch.setattr(ray_train, "_fit", fit)
    monkeypatch.setattr(ray_train, "ensure_ray", lambda *a: None)
    monkeypatch.setattr(ray_train, "_wait_for_cpus", lambda cpus: None)
    return calls


def _job(tmp_path):
    from flywheel.engines.ray_train import TrainJob
    from flywheel.train.config import StageConfig

    return TrainJob(
        "sft", "sft", str(tmp_path / "m"), None, [str(tmp_path / "d.jsonl")], str(tmp_path / "o"), StageConfig()
    )


def test_lost_workers_restart_the_fit_up_to_max_failures(monkeypatch, tmp_path):
    from ray.exceptions import ActorDiedError

    from flywheel.engines.ray_train import run_training
    from flywheel.errors import FlywheelError
    from flywheel.train.config import TrainConfig

    calls = _policy(monkeypatch, tmp_path, [_group_error(ActorDiedError())] * 2)
    assert "sft" in run_training([_job(tmp_path)], TrainConfig(max_failures=2), str(tmp_path / "r"))
    assert len(calls) == 3

    calls = _policy(monkeypatch, tmp_path, [_group_error(ActorDiedError())] * 2)
    with pytest.raises(FlywheelError, match=r"worker process died.*gave up after 1 restart\(s\).*resume"):
        run_training([_job(tmp_path)], TrainConfig(max_failures=1), str(tmp_path / "r"))
    assert len(calls) == 2


def test_the_training_codes_own_errors_fail_at_once(monkeypatch, tmp_path):
    from flywheel.engines.ray_train import run_training
    from flywheel.errors import FlywheelError
    from flywheel.train.config import TrainConfig

    calls = _policy(monkeypatch, tmp_path, [_group_error(FlywheelError("sft: row 3 has no messages"))])
    with pytest.raises(FlywheelError, match="row 3"):
        run_training([_job(tmp_path)], TrainConfig(max_failures=2), str(tmp_path / "r"))
    calls = _policy(monkeypatch, tmp_path, [_group_error(ValueError("a bug"))])
    with pytest.raises(Exception, match="Training failed"):
        run_training([_job(tmp_path)], TrainConfig(max_failures=2), str(tmp_path / "r"))
    assert len(calls) == 1
