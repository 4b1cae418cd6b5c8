"""Stage ``promote``: move the generator to the round's candidate only if the evaluation says it is better."""

from __future__ import annotations

from flywheel.evals.gate import decide
from flywheel.stages.common import Context, run_once
from flywheel.stages.evaluate import candidate
from flywheel.stages.roles import generator


def run(ctx: Context) -> dict:
    """Move the generator to the candidate only if it beats the current one by ``eval.margin``."""
    eman = ctx.manifest("evaluate")
    cand, gen = candidate(ctx), generator(ctx)
    ec = ctx.cfg.eval

    def body(fp: str):
        promoted, reason = decide(eman["metrics"], ec.metric, ec.margin)
        new = {"uri": cand["uri"], "id": cand["id"], "round_promoted": ctx.round} if promoted else gen
        metrics = {
            "promoted": int(promoted),
            **{k: v for k, v in eman["metrics"].items() if isinstance(v, (int, float))},
        }
        if ctx.tracker is not None:
            ctx.tracker.register(ctx.round, cand, promoted, reason)
        return {"generator": new, "candidate": cand, "decision": {"promoted": promoted, "reason": reason}}, metrics

    return run_once(
        ctx, "promote", [eman["fingerprint"], ec.metric, ec.margin], body, inputs={"evaluate": eman["fingerprint"]}
    )
