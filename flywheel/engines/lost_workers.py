"""Which Ray Train failures are a lost worker process (killed, or never started) rather than the code's own error.

:func:`flywheel.engines.ray_train.run_training` restarts the fit for the former and fails at once for the latter.
"""

from __future__ import annotations

# Ray Train v2 reports a worker process that died as a failed health check, and a group that never got its
# resources as a start-up timeout; both classes live in a private module, so they are matched by name
DIED = "a training worker process died (killed: out of memory?)"
LOST_WORKER_ERRORS = {
    "WorkerHealthCheckFailedError": DIED,
    "WorkerGroupStartupTimeoutError": "the training workers did not start in time (resources still held?)",
}


def lost_worker_reason(err: BaseException) -> str | None:
    """Why a Ray Train failure is a lost worker process -- killed (the OOM killer, a lost node) or never
    started -- rather than an error raised by the training code; ``None`` for the latter."""
    from ray.exceptions import RayActorError

    seen = [err, *getattr(err, "worker_failures", {}).values()]
    while seen:
        e = seen.pop()
        if isinstance(e, RayActorError):
            return DIED
        if type(e).__name__ in LOST_WORKER_ERRORS:
            return LOST_WORKER_ERRORS[type(e).__name__]
        causes = (e.__cause__, getattr(e, "cause", None), getattr(e, "health_check_failure", None))
        seen.extend(x for x in causes if isinstance(x, BaseException))
    return None
