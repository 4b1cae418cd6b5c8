"""Stage ``judge``: reward-model scores (5 HelpSteer2 attributes -> weighted reward) and ground-truth checks."""

from __future__ import annotations

from flywheel.judges.reward import ATTRIBUTES, aggregate
from flywheel.judges.verifiers import verify
from flywheel.stages.common import Context, batched, map_parts, read_output, run_stage, section
from flywheel.stages.runtime import engines, model_dir, reward_model


def run(ctx: Context) -> dict:
    rm = reward_model(ctx)
    rman = ctx.manifest("responses")
    jc = ctx.cfg.judges

    def body(fp: str):
        rows = list(read_output(ctx, rman, "responses"))
        pool = engines(ctx).reward(model_dir(ctx, rm["uri"], "reward model"))
        weights = dict(jc.weights)

        def make_rows(batch: list[dict], out: dict) -> list[dict]:
            scored = []
            for row, raw in zip(batch, out["scores"]):
                scores = dict(zip(ATTRIBUTES, raw))
                verified = verify(row.get("meta"), row["messages"][-1]["content"]) if jc.use_verifiers else None
                lin = {**row["lineage"], "stage": "judge", "judge": rm["id"], "config_hash": fp}
                scored.append({**row, "scores": scores, "reward": aggregate(scores, weights), "judge": rm["id"],
                               "verified": verified, "lineage": lin})
            return scored

        out, metrics = map_parts(ctx, "judge", fp, pool, "score", batched(rows, ctx.cfg.engine.batch_size),
                                 make_args=lambda b: ([r["messages"] for r in b],), make_rows=make_rows,
                                 desc=f"round {ctx.round} judge")
        rewards = [r["reward"] for r in read_output(ctx, {"stage": "judge", "outputs": {"scored": out}}, "scored")]
        if rewards:
            metrics.update(reward_mean=sum(rewards) / len(rewards), reward_min=min(rewards), reward_max=max(rewards))
        return {"scored": out}, metrics

    return run_stage(ctx, "judge", [rman["fingerprint"], rm, section(jc)], body,
                     inputs={"responses": rman["fingerprint"]})
