"""Stage ``promote``: the candidate replaces the generator only if the held-out suites say it is better.

The gate (:func:`flywheel.evals.stats.gate`) pairs the candidate's and the generator's per-prompt results
on the same prompts. The primary suite (``eval.primary``, default ``if``: all instructions of a prompt
followed, strict) must improve with stated confidence: its paired-bootstrap interval lies above
``eval.margin`` at ``eval.confidence`` and its exact sign test rejects "no difference" at
``1 - eval.confidence``. No other suite may regress by more than ``eval.tolerance`` (``eval.guard``: shown at
that confidence, the default, or by its mean alone). The decision, each
suite's delta with its interval and the reason are in the manifest, in MLflow (tags on the round's run and
the registered version) and in one console line.
"""

from __future__ import annotations

from typing import Any, cast

from flywheel.evals.stats import gate
from flywheel.stages.common import Context, log, run_once
from flywheel.stages.evaluate import candidate, win_rate
from flywheel.stages.roles import generator
from flywheel.store import Store


def paired_suites(cand: dict[str, Any], base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-prompt scores of candidate and baseline, suite by suite, on the same prompts (pure)."""

    def aligned(name: str) -> tuple[list[dict], list[dict]]:
        c, b = cand[name], base[name]
        if [r["id"] for r in c] != [r["id"] for r in b]:
            raise ValueError(f"suite {name}: candidate and generator results cover different prompts")
        return c, b

    c_if, b_if = aligned("if")
    c_math, b_math = aligned("math")
    c_rw, b_rw = aligned("reward")
    return {
        "if": {
            "candidate": [float(r["prompt_strict"]) for r in c_if],
            "baseline": [float(r["prompt_strict"]) for r in b_if],
        },
        "math": {"candidate": [float(r["correct"]) for r in c_math], "baseline": [float(r["correct"]) for r in b_math]},
        "reward": {"candidate": win_rate(c_rw, b_rw), "baseline": [0.5] * len(c_rw)},
    }


def decide(suites: dict[str, dict[str, Any]], ec: Any) -> tuple[bool, str, dict[str, dict[str, Any]]]:
    """The promotion decision for one round from its paired suites and the ``eval`` config."""
    promoted, reason, stats = gate(
        suites,
        ec.primary,
        ec.tolerance,
        ec.confidence,
        margin=ec.margin,
        sign_alpha=1.0 - ec.confidence,
        resamples=ec.resamples,
        guard=ec.guard,
    )
    if ec.always_promote and not promoted:
        return True, f"promote (eval.always_promote; the gate said: {reason})", stats
    return promoted, reason, stats


def run(ctx: Context) -> dict:
    """Move the generator to the candidate only if the gate passes."""
    eman = ctx.manifest("evaluate")
    cand, gen = candidate(ctx), generator(ctx)
    ec = ctx.cfg.eval

    def body(fp: str) -> tuple[dict, dict]:
        res = {role: ctx.store.read_json(eman["outputs"][role]["uri"]) for role in ("candidate", "generator")}
        promoted, reason, stats = decide(paired_suites(res["candidate"], res["generator"]), ec)
        new = {"uri": cand["uri"], "id": cand["id"], "round_promoted": ctx.round} if promoted else gen
        metrics: dict[str, Any] = {"promoted": int(promoted)}
        for name, s in stats.items():
            metrics.update(
                {
                    f"{name}_delta": s["delta"],
                    f"{name}_low": s["low"],
                    f"{name}_high": s["high"],
                    f"{name}_sign_p": s["sign_p_value"],
                }
            )
        log.info("round %d: %s — %s", ctx.round, "promoted" if promoted else "not promoted", reason)
        decision = {"promoted": promoted, "reason": reason, "suites": stats}
        return {"generator": new, "candidate": cand, "decision": decision}, metrics

    gate_cfg = [ec.primary, ec.confidence, ec.margin, ec.tolerance, ec.resamples, ec.always_promote, ec.guard]
    man = run_once(ctx, "promote", [eman["fingerprint"], *gate_cfg], body, inputs={"evaluate": eman["fingerprint"]})
    if ctx.tracker is not None:
        sync_registry(ctx.store, ctx.tracker)  # after the manifest, skipped or not: a crash between is repaired
    return man


def _register(store: Store, tracker: Any, round_idx: int) -> str:
    man = store.manifest(round_idx, "promote")
    assert man is not None
    d = man["outputs"]["decision"]
    tags = {f"flywheel.{k}": f"{v:.4f}" for k, v in man["metrics"].items() if k != "promoted"}
    return str(tracker.register(round_idx, man["outputs"]["candidate"], d["promoted"], d["reason"], tags))


def sync_registry(store: Store, tracker: Any) -> None:
    """MLflow's registry from the store, which is the truth: each decided round's candidate registered once,
    ``@candidate`` on the newest decided round's, ``@generator`` on the store's generator (removed while that
    is still the initial model). Idempotent: a rerun of an older round never moves an alias backwards."""
    decided = [r for r in store.rounds() if store.manifest(r, "promote")]
    if not decided:
        return
    newest = max(decided)
    cand = _register(store, tracker, newest)
    latest = cast(dict, store.manifest(newest, "promote"))["outputs"]["generator"]
    promoted_in = latest.get("round_promoted")
    gen = _register(store, tracker, int(promoted_in)) if promoted_in else None
    tracker.set_aliases(cand, gen)
