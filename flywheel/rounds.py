"""The round loop and its run-level wiring: open a run (store, tracker, engines), run stages by name, status.

:func:`run_rounds` is the one loop over rounds and stages; the CLI's ``--no-prefect`` path calls it with
:func:`run_stage`, the Prefect flows with a task per stage. Neither holds stage logic.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flywheel import costs, runlock
from flywheel.config import Config, load_config, round_config, to_dict
from flywheel.engines.cache import EngineCache
from flywheel.errors import FlywheelError, stop_on_sigterm
from flywheel.stages import datasets, dialogues, evaluate, judge, promote, prompts, responses, reward, training
from flywheel.stages.common import Context
from flywheel.store import Store

log = logging.getLogger("flywheel")

# Run-level stages, done once before round 1 (stored as round 0); every round uses what they publish.
RUN_STAGES = ("reward",)
# The round DAG, in order. ``train`` expands to sft_code -> sft -> dpo -> rpo_1..n (one trainer run).
STAGES = ("prompts", "dialogues", "responses", "judge", "datasets", "train", "evaluate", "promote")
_RUN = {
    "prompts": prompts.run,
    "dialogues": dialogues.run,
    "responses": responses.run,
    "judge": judge.run,
    "datasets": datasets.run,
    "train": training.run,
    "evaluate": evaluate.run,
    "promote": promote.run,
    "reward": reward.run,
}

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "VLLM_NO_USAGE_STATS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def offline_env() -> None:
    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)


@dataclass
class Run:
    """Everything that lives as long as one ``flywheel`` process: config, store, tracker, engine pools."""

    cfg: Config
    store: Store
    tracker: Any = None
    engines: EngineCache | None = None
    contexts: dict[int, Context] = field(default_factory=dict)
    lock: str | None = None  # the run root's lock file while this process holds it (flywheel.runlock)

    def context(self, round_idx: int) -> Context:
        """The context of round ``round_idx`` (0: the run-level stages)."""
        if round_idx < 0:
            raise FlywheelError(f"round must be >= 1, got {round_idx}")
        if round_idx not in self.contexts:
            self.contexts[round_idx] = Context(
                cfg=round_config(self.cfg, round_idx),
                store=self.store,
                round=round_idx,
                engines=self.engines,
                tracker=self.tracker,
            )
        return self.contexts[round_idx]

    def close(self) -> None:
        try:
            if self.engines is not None:
                self.engines.release()
        finally:
            if self.lock is not None:
                runlock.release(self.lock)
                self.lock = None


_OPEN: dict[tuple, Run] = {}


def open_run(config: str | None = None, overrides: list[str] | tuple[str, ...] = (), track: bool = True) -> Run:
    """The process-wide runtime for a (config, overrides) pair; created once, reused by every task."""
    key = (config, tuple(overrides))
    if key in _OPEN:
        return _OPEN[key]
    offline_env()
    cfg = load_config(config, list(overrides))
    store = Store(cfg.run.root, cfg.run.storage_options)
    store.check()
    lock = runlock.acquire(cfg.run.root, cfg.run.cache_dir, cfg.run.lock_wait_s)  # before anything is written
    tracker = None
    try:
        if track and cfg.tracking.enabled:
            from flywheel.tracking import Tracker

            params = to_dict(cfg)
            params["run"].pop("storage_options", None)  # may carry endpoints/keys: never logged
            tracker = Tracker(cfg.tracking, store, os.path.expanduser(cfg.run.cache_dir), cfg.run.name, params=params)
    except BaseException:
        runlock.release(lock)
        raise
    rt = Run(cfg=cfg, store=store, tracker=tracker, engines=EngineCache(cfg.engine, cfg.ray, cfg.run.seed), lock=lock)
    _OPEN[key] = rt
    return rt


def close_all() -> None:
    for rt in _OPEN.values():
        rt.close()
    _OPEN.clear()


def run_stage(rt: Run, round_idx: int, name: str) -> dict:
    """Run one stage of a round (skipped if already done); run-level stages run as round 0. Returns a summary."""
    if name not in _RUN:
        raise FlywheelError(f"unknown stage {name!r}; stages: {', '.join(RUN_STAGES + STAGES)}")
    stop_on_sigterm()  # a Prefect flow run puts its own handler in: SIGTERM must stop the run, not be retried
    if name in RUN_STAGES:
        round_idx = 0
    elif round_idx < 1:
        raise FlywheelError(f"round must be >= 1, got {round_idx}")
    ctx = rt.context(round_idx)
    if rt.tracker is not None and round_idx > 0:
        from flywheel.stages.roles import generator

        rt.tracker.round_run(round_idx, generator(ctx))
    man = _RUN[name](ctx)
    return {
        "stage": name,
        "round": round_idx,
        "fingerprint": man["fingerprint"] if man else None,
        "skipped": bool(man and man.get("skipped")),
    }


def run_rounds(
    first: int,
    last: int,
    config: str | None,
    overrides: list[str],
    call: Callable[[Run, int, str], Any] = run_stage,
    close: bool = True,
) -> dict[int, dict]:
    """Rounds ``first..last`` in order, each stage through ``call(run, round, name)``; returns each decision.

    Every round is closed in MLflow with its status (``FAILED`` when a stage raised) and its wall-time
    summary; with ``close`` the engine pools are released at the end, whatever happened.
    """
    if first < 1 or last < first:
        raise FlywheelError(f"rounds {first}..{last}: need 1 <= first <= last")
    decisions: dict[int, dict] = {}
    try:
        from flywheel.stages.roles import check_models

        check_models(open_run(config, overrides).context(1))  # a missing model stops the run before any stage
        for name in RUN_STAGES:  # once per run; a skip when already published
            call(open_run(config, overrides), 0, name)
        for r in range(first, last + 1):
            rt = open_run(config, overrides)
            started, fixed, state = time.time(), costs.snapshot(), "FAILED"
            try:
                for name in STAGES:
                    call(rt, r, name)
                state = "FINISHED"
            finally:
                finish_round(rt, r, started, state, fixed)
            promo = rt.store.manifest(r, "promote")
            decisions[r] = promo["outputs"]["decision"] if promo else {}
    finally:
        if close:
            close_all()
    return decisions


def stage_list(cfg: Config) -> list[str]:
    """Every stage name a round records, in order (training expanded)."""
    names: list[str] = []
    for s in STAGES:
        names += (
            ["sft_code", "sft", "dpo"] + [f"rpo_{i}" for i in range(1, cfg.train.rpo.iterations + 1)]
            if s == "train"
            else [s]
        )
    return names


def status(cfg: Config, store: Store) -> list[dict]:
    """Each round's stages: done / failed / pending, read from the store only (run-level: :func:`run_status`)."""
    rounds = []
    for r in store.rounds():
        if r == 0:
            continue
        stages = {name: _state(store, r, name) for name in stage_list(cfg)}
        promo = store.manifest(r, "promote")
        entry: dict[str, Any] = {"round": r, "stages": stages}
        if promo:
            entry["promoted"] = promo["outputs"]["decision"]["promoted"]
            entry["reason"] = promo["outputs"]["decision"]["reason"]
            entry["generator"] = promo["outputs"]["generator"]["id"]
        rounds.append(entry)
    return rounds


def _state(store: Store, r: int, name: str) -> str:
    """``failed`` when the newest attempt failed (even if an older attempt's result is still published)."""
    man, failed = store.manifest(r, name), store.failure(r, name)
    if failed is not None and (man is None or failed.get("at", 0.0) >= man.get("finished_at", 0.0)):
        return "failed"
    return "done" if man is not None else "pending"


def run_status(store: Store) -> dict[str, Any]:
    """The run-level stages: each one's state, and the judge's held-out accuracy once ``reward`` is done."""
    out: dict[str, Any] = {name: _state(store, 0, name) for name in RUN_STAGES}
    man = store.manifest(0, "reward")
    if man is not None:
        out["reward_model"] = man["outputs"]["model"]["uri"]
        out["reward_trained"] = man["outputs"]["judge"]["trained"]
        out["reward_accuracy"] = {k: v for k, v in man["metrics"].items() if k.startswith("accuracy")}
    return out


def compute_seconds(manifest: dict) -> float:
    """Seconds a stage spent on its own work: engine/trainer time when recorded, else its whole duration."""
    m = manifest.get("metrics", {})
    for key in ("wall_seconds", "train_seconds"):
        if isinstance(m.get(key), (int, float)):
            return float(m[key])
    return float(manifest.get("seconds") or 0.0)


# The generation stages, and the one whose batches are full (k samples of every prompt in one stream): the
# round's own measure of what its engines decode at full batch, against which the others are reported.
GENERATION_STAGES = ("prompts", "dialogues", "responses")
FULL_BATCH_STAGE = "responses"


def generation_shares(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Each generation stage's tokens/s and its share of the full-batch stage's (``metrics``: stage -> metrics).

    Stages that did not run (or generated nothing) are left out; shares need the full-batch stage's rate.
    """
    rates = {s: float(metrics[s]["tokens_per_s"]) for s in GENERATION_STAGES if metrics.get(s, {}).get("tokens_per_s")}
    out = {f"gen/{s}_tokens_per_s": round(r, 2) for s, r in rates.items()}
    full = rates.get(FULL_BATCH_STAGE)
    if full:
        out.update({f"gen/{s}_share": round(r / full, 3) for s, r in rates.items()})
    return out


def finish_round(
    rt: Run, round_idx: int, started: float, status_: str = "FINISHED", fixed: dict[str, float] | None = None
) -> dict:
    """Record the round's wall time and its overhead: engine starts, training start-up, model loads and
    orchestration (:mod:`flywheel.costs`; ``fixed`` is its snapshot at the round's start)."""
    wall = time.time() - started
    mans = [rt.store.manifest(round_idx, n) for n in stage_list(rt.cfg)]
    fresh = [m for m in mans if m and m.get("finished_at", 0) >= started]
    compute = sum(compute_seconds(m) for m in fresh)
    summary: dict[str, float] = {
        "round_wall_seconds": round(wall, 2),
        "stage_compute_seconds": round(compute, 2),
        "stages_run": len(fresh),
        **costs.breakdown(wall, compute, fixed if fixed is not None else costs.snapshot()),
    }
    if not fresh:
        summary["overhead_share"] = 0.0
    shares = generation_shares({m["stage"]: m.get("metrics", {}) for m in fresh if m.get("stage")})
    summary.update(shares)
    log.info(
        "round %d: %.0fs wall, overhead %.0f%%: engine starts %.0fs, training start %.0fs, model loads %.0fs, "
        "orchestration %.0fs (%d stages ran)",
        round_idx,
        wall,
        100 * summary["overhead_share"],
        summary["fixed/engine_start_seconds"],
        summary["fixed/train_start_seconds"],
        summary["fixed/model_load_seconds"],
        summary["fixed/orchestration_seconds"],
        len(fresh),
    )
    full = f"gen/{FULL_BATCH_STAGE}_tokens_per_s"
    if f"gen/{FULL_BATCH_STAGE}_share" in shares:
        others = [s for s in GENERATION_STAGES if s != FULL_BATCH_STAGE and f"gen/{s}_share" in shares]
        log.info(
            "round %d generation: %s %.0f tok/s at full batch%s",
            round_idx,
            FULL_BATCH_STAGE,
            shares[full],
            "".join(
                f"; {s} {shares[f'gen/{s}_tokens_per_s']:.0f} ({shares[f'gen/{s}_share']:.2f} of it)" for s in others
            ),
        )
    if rt.tracker is not None:
        try:
            rt.tracker.log_round_metrics(round_idx, summary)
            rt.tracker.end_round(round_idx, status_)
        except Exception as err:
            if status_ == "FINISHED":
                raise
            # the round is ending on an error or Ctrl-C, which may have cut an MLflow write short (SQLite then
            # reports "database is locked"): that error, not this record's, is what the run must end with
            log.warning("round %d: could not record the %s round in MLflow: %s", round_idx, status_.lower(), err)
    return summary
