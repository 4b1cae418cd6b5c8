"""A pool of engine actors on Ray: batched requests, streaming results, retry, dead-actor replacement.

``ray.remote`` is applied here, at the call site, with resources from config; the engine classes stay plain.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from flywheel.errors import FlywheelError, stop_on_sigterm
from flywheel.hardware import allocator_env

log = logging.getLogger(__name__)

# RAY_TRAIN_ENABLE_PRINT_PATCH=0: Ray Train (which propagates the variable to its workers) would otherwise turn a
# worker's print into a log record on stderr as well as the line on stdout, so every worker line arrives twice.
_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "1", "RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}


def ensure_ray(address: str = "local", num_cpus: int | None = None) -> None:
    """Start (or join) Ray once per process. ``address="local"`` never joins a running cluster by accident."""
    import ray

    if ray.is_initialized():
        return
    for k, v in _RAY_ENV.items():
        os.environ.setdefault(k, v)
    kwargs: dict[str, Any] = {"address": address, "log_to_driver": True}
    if address == "local":
        # the dashboard serves Ray's state API (Ray Train's placement-group cleaner polls it every second and
        # warns when it is missing) and shows actors and jobs; on 127.0.0.1, on the next free port from 8265
        kwargs.update(num_cpus=num_cpus or os.cpu_count(), dashboard_host="127.0.0.1")
    ray.init(**kwargs)
    # ray.init's own SIGTERM handler calls sys.exit inside whatever Ray call is waiting, which ends in an
    # abort (exit 134) with no word said; stop the way Ctrl-C does instead
    stop_on_sigterm()
    # Ray Train's helper actors look the cluster up by address; name ours so a second Ray on the machine
    # (another run, a test) is never picked by mistake.
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address


def stop_ray() -> None:
    """Disconnect from Ray (stopping a private local one), so its log monitor's last lines land in the run's log."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _core_binding(index: int, cpus_per_actor: float) -> str:
    n = max(1, int(cpus_per_actor))
    total = os.cpu_count() or 1
    start = (index * n) % total
    cores = [(start + i) % total for i in range(n)]
    return ",".join(str(c) for c in cores)


class EnginePool:
    """N actors of one engine class over one model.

    Args:
        engine_cls: a plain class (``ChatEngine``/``RewardEngine``) taking ``spec``.
        spec: its constructor argument.
        num_actors, cpus_per_actor, gpus_per_actor: resources per actor (from ``EngineConfig``).
        pin_cores: on CPU, bind each actor's vLLM threads to its own cores (vLLM's worker threads are invisible
            to Ray's accounting and would all bind core 0 otherwise).
        allocator: memory allocator of the actor processes (:func:`flywheel.hardware.allocator_env`).
    """

    def __init__(
        self,
        engine_cls: type,
        spec: Any,
        num_actors: int = 1,
        cpus_per_actor: float = 1.0,
        gpus_per_actor: float = 0.0,
        pin_cores: bool = True,
        max_retries: int = 2,
        allocator: str = "system",
    ):
        import ray

        self._ray = ray
        self.engine_cls, self.spec = engine_cls, spec
        self.cpus, self.gpus, self.pin = cpus_per_actor, gpus_per_actor, pin_cores and gpus_per_actor == 0
        self.max_retries = max_retries
        try:
            self.allocator_env = allocator_env(allocator)
        except ValueError as err:
            raise FlywheelError(f"engine.allocator: {err}") from None
        self.replacements = 0  # dead actors replaced so far (logged by callers, checked by tests)
        self.actors = [self._spawn(i) for i in range(num_actors)]
        try:
            ray.get([a.ready.remote() for a in self.actors])
        except ray.exceptions.RayError as err:
            self.shutdown()
            raise FlywheelError(f"engine start failed for {getattr(spec, 'model', spec)}: {_short(err)}") from None

    def _spawn(self, index: int):
        env = {
            "OMP_NUM_THREADS": str(max(1, int(self.cpus))),
            "PYTHONWARNINGS": "ignore",
            "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
            **self.allocator_env,
        }
        if self.pin:
            env.update(
                {"VLLM_CPU_OMP_THREADS_BIND": _core_binding(index, self.cpus), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
            )
        remote_cls: Any = self._ray.remote(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0, runtime_env={"env_vars": env}
        )(self.engine_cls)
        return remote_cls.remote(self.spec)

    def run(self, method: str, calls: Iterable[tuple], in_flight_per_actor: int = 2) -> list[dict]:
        """``getattr(engine, method)(*args)`` for each ``args`` in ``calls``; the results in input order."""
        results: dict[int, dict] = {}
        self.map(method, enumerate(calls), results.__setitem__, in_flight_per_actor)
        return [results[i] for i in range(len(results))]

    def map(
        self,
        method: str,
        jobs: Iterable[tuple[Any, tuple]],
        on_result: Callable[[Any, dict], None],
        in_flight_per_actor: int = 2,
    ) -> None:
        """Run ``getattr(engine, method)(*args)`` for each ``(key, args)``; call ``on_result(key, out)`` as
        results arrive (in completion order), so the caller can write each part as soon as it is done.

        A failed request is retried up to ``max_retries`` times; a dead actor is replaced and its requests
        resubmitted. Finished results are never recomputed.
        """
        ray = self._ray
        pending = list(jobs)[::-1]
        attempts: dict[Any, int] = {}
        running: dict[Any, tuple[Any, tuple, int]] = {}  # ref -> (key, args, actor index)
        load = [0] * len(self.actors)

        def submit():
            while pending:
                idx = min(range(len(self.actors)), key=lambda i: load[i])
                if load[idx] >= in_flight_per_actor:
                    return
                key, args = pending.pop()
                ref = getattr(self.actors[idx], method).remote(*args)
                running[ref] = (key, args, idx)
                load[idx] += 1

        submit()
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            ref = done[0]
            key, args, idx = running.pop(ref)
            load[idx] -= 1
            try:
                out = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                log.warning("engine actor %d died (%s); replacing it", idx, _short(err))
                self._replace(idx, running, pending, load)
                pending.append((key, args))
            except ray.exceptions.RayTaskError as err:
                attempts[key] = attempts.get(key, 0) + 1
                if attempts[key] > self.max_retries:
                    raise FlywheelError(f"{method} failed {attempts[key]} times on part {key}: {_short(err)}") from None
                log.warning("retrying part %s after error: %s", key, _short(err))
                pending.append((key, args))
            else:
                on_result(key, out)
            submit()

    def _replace(self, idx: int, running: dict, pending: list, load: list[int]) -> None:
        """Swap in a fresh actor; requeue everything that was in flight on the dead one."""
        for ref, (key, args, i) in list(running.items()):
            if i == idx:
                running.pop(ref)
                pending.append((key, args))
        load[idx] = 0
        self.actors[idx] = self._spawn(idx)
        self.replacements += 1

    def shutdown(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):  # already dead
                self._ray.kill(a)
        self.actors = []
        time.sleep(0.2)


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[-1] if text else type(err).__name__)[:300]
