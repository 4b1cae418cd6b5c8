"""Stage ``evaluate``: the candidate and the current generator answer the held-out suite; reward and verifiers score."""

from __future__ import annotations

from flywheel.evals.gate import summarize
from flywheel.judges.attributes import ATTRIBUTES, aggregate
from flywheel.judges.verifiers import verify
from flywheel.stages.common import Context, read_prompt_file, run_once, section
from flywheel.stages.roles import engines, generator, model_dir, reward_model
from flywheel.stages.training import stage_names


def candidate(ctx: Context) -> dict:
    """The round's trained model: the last training stage's export."""
    man = ctx.manifest(stage_names(ctx)[-1])
    return {
        "uri": man["outputs"]["model"]["uri"],
        "id": f"round-{ctx.round}:{man['stage']}:{man['fingerprint']}",
        "fingerprint": man["fingerprint"],
    }


def _answers(ctx: Context, model_uri: str, prompts: list[dict]) -> list[str]:
    pool = engines(ctx).chat(model_dir(ctx, model_uri))
    sampling = {"temperature": 0.0, "max_tokens": ctx.cfg.eval.max_tokens}
    (out,) = pool.run("chat", [([p["messages"] for p in prompts], sampling, 1)])
    return [t[0] for t in out["texts"]]


def _scores(ctx: Context, rm_uri: str, prompts: list[dict], answers: list[str]) -> list[dict]:
    pool = engines(ctx).reward(model_dir(ctx, rm_uri, "reward model"))
    convs = [p["messages"] + [{"role": "assistant", "content": a}] for p, a in zip(prompts, answers)]
    (out,) = pool.run("score", [(convs,)])
    weights = dict(ctx.cfg.judges.weights)
    rows = []
    for p, a, raw in zip(prompts, answers, out["scores"]):
        scores = dict(zip(ATTRIBUTES, raw))
        rows.append(
            {
                "prompt_id": p["id"],
                "reward": aggregate(scores, weights),
                "scores": scores,
                "verified": verify(p.get("meta"), a),
                "chars": len(a),
            }
        )
    return rows


def run(ctx: Context) -> dict:
    cand, gen, rm = candidate(ctx), generator(ctx), reward_model(ctx)
    ec = ctx.cfg.eval

    def body(fp: str):
        prompts = read_prompt_file(ec.heldout_file)[: ec.max_prompts]
        results = {}
        for role, model in (("candidate", cand), ("generator", gen)):
            answers = _answers(ctx, model["uri"], prompts)
            results[role] = _scores(ctx, rm["uri"], prompts, answers)
        metrics = summarize(results["candidate"], results["generator"])
        uri = ctx.store.uri(f"round-{ctx.round:03d}", "evaluate", fp, "results.json")
        sha = ctx.store.write_json(uri, results)
        return {"results": {"uri": uri, "sha256": sha, "count": len(prompts)}}, metrics

    return run_once(
        ctx,
        "evaluate",
        [cand["fingerprint"], gen, rm, section(ec), dict(ctx.cfg.judges.weights)],
        body,
        inputs={"candidate": cand["fingerprint"]},
    )
