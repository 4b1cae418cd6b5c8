"""Prefect flows: one round (a task per stage) and iterate (rounds in order, resuming).

Tasks hold no logic: each calls ``flywheel.rounds.run_stage`` with plain values (config path, overrides, round,
stage name); the stage itself skips when its manifest is already published, so re-running a flow resumes it.

Run:  flywheel iterate --rounds 2 --config configs/tiny.yaml
Deploy: flywheel deploy  (see prefect.yaml)
"""

from __future__ import annotations

from prefect import flow, task

from flywheel.ops.naming import iterate_flow_run_name, round_flow_run_name, stage_task_run_name, task_options
from flywheel.rounds import Run, close_all, open_run, run_rounds, run_stage

# iterate_flow runs under way in this process: their rounds keep the run (engines, run-root lock) open for the
# next round. A process-wide count, not a context variable: Prefect may run a subflow on another thread.
_ITERATING = {"n": 0}


@task(name="stage", task_run_name=stage_task_run_name, retries=0)
def stage_task(config: str | None, overrides: list[str], round_idx: int, name: str) -> dict:
    return run_stage(open_run(config, overrides), round_idx, name)


def _as_task(config: str | None, overrides: list[str]):
    """``run_rounds``'s stage call, as one Prefect task run per stage."""

    def call(_run: Run, round_idx: int, name: str) -> dict:
        return stage_task.with_options(name=name, **task_options(name))(config, overrides, round_idx, name)

    return call


@flow(name="flywheel-round", flow_run_name=round_flow_run_name, log_prints=True)
def round_flow(round_idx: int, config: str | None = None, overrides: list[str] | None = None) -> dict:
    """One round of the flywheel: prompts -> responses -> judge -> datasets -> train -> evaluate -> promote."""
    overrides = list(overrides or [])
    # inside iterate_flow the pools stay open for its next round (it releases them at the end); a round run
    # on its own (a deployment served from the Prefect UI) releases them and the run-root lock when it ends,
    # so the serving process does not hold the root for the next run
    keep = _ITERATING["n"] > 0
    return run_rounds(round_idx, round_idx, config, overrides, _as_task(config, overrides), close=not keep)[round_idx]


@flow(name="flywheel-iterate", flow_run_name=iterate_flow_run_name, log_prints=True)
def iterate_flow(first: int = 1, last: int = 1, config: str | None = None, overrides: list[str] | None = None) -> dict:
    """Rounds ``first..last`` in order; each round generates with the model the previous one promoted."""
    decisions = {}
    _ITERATING["n"] += 1
    try:
        for r in range(first, last + 1):
            decisions[r] = round_flow(r, config, overrides)
    finally:
        _ITERATING["n"] -= 1
        close_all()
    return decisions


def iterate(first: int, last: int, config: str | None, overrides: list[str]) -> dict:
    """:func:`iterate_flow` as the CLI runs it: SIGTERM between stages (Prefect's ``TerminationSignal``) stops
    the run the way it does inside a stage (:class:`flywheel.errors.Terminated`), with one line, not a traceback."""
    from prefect.exceptions import TerminationSignal

    from flywheel.errors import Terminated

    try:
        return iterate_flow(first=first, last=last, config=config, overrides=overrides)
    except TerminationSignal:
        Terminated.received = True
        raise Terminated() from None
