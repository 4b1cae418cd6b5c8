"""Stage ``judge``: reward-model scores (5 HelpSteer2 attributes -> weighted reward), ground-truth checks, and
optionally an LLM judge asked about response pairs in both orders.

With ``judges.llm_judge``, prompts that ground truth cannot settle (no verified-right and verified-wrong
response) get ``judges.judge_pairs_per_prompt`` response pairs judged by ``judges.judge_model`` (default: the
round's generator) with ``generation.answer_sampling``, each pair in both orders; a pair is kept only when
both orders agree (Nemotron-4 340B, sec. 3.2.3). The raw verdicts (``llm_verdicts``) and kept pairs
(``llm_pairs``, judge ``llm_judge``, both reward-model rewards attached) are extra outputs of this stage.
"""

from __future__ import annotations

import os
from typing import Any

from flywheel.judges.attributes import ATTRIBUTES, aggregate
from flywheel.judges.candidates import group_by_prompt
from flywheel.judges.config import SCORING_KEYS
from flywheel.judges.llm_select import judge_requests, pairwise_select
from flywheel.judges.verifiers import verify
from flywheel.stages.common import Context, batched, map_parts, read_output, run_once, section, write_parts
from flywheel.stages.roles import chat_pool, engines, generator, model_dir, reward_model


def judge_model(ctx: Context) -> dict:
    """The LLM judge ``{"uri", "id"}``: ``judges.judge_model`` or the round's generator."""
    spec = ctx.cfg.judges.judge_model
    if not spec:
        gen = generator(ctx)
        return {"uri": gen["uri"], "id": f"llm:{gen['id']}"}
    return {"uri": spec, "id": f"llm:{os.path.basename(spec.rstrip('/'))}"}


def undecided(scored: list[dict]) -> list[Any]:
    """Rows of prompts that ground truth does not settle (no verified-True beside a verified-False response)."""
    keep = []
    for group in group_by_prompt(scored).values():
        flags = {r.get("verified") for r in group}
        if not (True in flags and False in flags):
            keep.extend(group)
    return keep


def llm_judge(ctx: Context, fp: str, scored: list[dict]) -> tuple[dict, dict]:
    """Judge response pairs of undecided prompts in both orders; returns (outputs, metrics)."""
    jc = ctx.cfg.judges
    judge = judge_model(ctx)
    requests, rstats = judge_requests(undecided(scored), jc.judge_pairs_per_prompt, jc.seed)
    engines(ctx).release("reward")  # the cores go to the judge's engines
    pool = chat_pool(ctx, judge["uri"], "judge model")
    sampling = section(ctx.cfg.generation.answer_sampling)

    def make_rows(batch: list[dict], out: dict) -> list[dict]:
        texts = [t[0] if t else "" for t in out["texts"]]
        n = len(batch)
        return [{**r, "text_ab": texts[i], "text_ba": texts[n + i]} for i, r in enumerate(batch)]

    verdicts, mm = map_parts(
        ctx,
        "judge",
        f"{fp}/llm_verdicts",
        pool,
        "chat",
        batched(requests, max(1, ctx.cfg.engine.batch_size // 2)),
        make_args=lambda b: ([r["messages_ab"] for r in b] + [r["messages_ba"] for r in b], sampling, 1),
        make_rows=make_rows,
        desc=f"round {ctx.round} llm judge",
    )
    rows = list(read_output(ctx, {"stage": "judge", "outputs": {"v": verdicts}}, "v"))
    pairs, pstats = pairwise_select(rows, [r["text_ab"] for r in rows], [r["text_ba"] for r in rows])
    lin = {"round": ctx.round, "stage": "judge", "config_hash": fp, "judge": judge["id"]}
    pairs = [{**p, "judge_model": judge["id"], "lineage": lin} for p in pairs]
    outputs = {"llm_verdicts": verdicts, "llm_pairs": write_parts(ctx, "judge", f"{fp}/llm_pairs", pairs)}
    metrics = {f"llm/{k}": v for k, v in pstats.as_dict().items()}
    metrics.update({f"llm/requests/{k}": v for k, v in rstats.as_dict().items()})
    metrics.update({"llm/tokens": mm["tokens"], "llm/wall_seconds": mm["wall_seconds"]})
    return outputs, metrics


def run(ctx: Context) -> dict:
    rm = reward_model(ctx)
    rman = ctx.manifest("responses")
    dman = ctx.store.manifest(ctx.round, "dialogues")  # optional: rounds may skip role-play
    jc = ctx.cfg.judges

    def body(fp: str):
        rows = list(read_output(ctx, rman, "responses"))
        dialogues = list(read_output(ctx, dman, "dialogues")) if dman else []
        pool = engines(ctx).reward(model_dir(ctx, rm["uri"], "reward model"))
        weights = dict(jc.weights)

        def make_rows(batch: list[dict], out: dict) -> list[dict]:
            scored = []
            for row, raw in zip(batch, out["scores"]):
                scores = dict(zip(ATTRIBUTES, raw))
                verified = verify(row.get("meta"), row["messages"][-1]["content"]) if jc.use_verifiers else None
                lin = {**row["lineage"], "stage": "judge", "judge": rm["id"], "config_hash": fp}
                scored.append(
                    {
                        **row,
                        "scores": scores,
                        "reward": aggregate(scores, weights),
                        "judge": rm["id"],
                        "verified": verified,
                        "lineage": lin,
                    }
                )
            return scored

        out, metrics = map_parts(
            ctx,
            "judge",
            fp,
            pool,
            "score",
            batched(rows, ctx.cfg.engine.batch_size),
            make_args=lambda b: ([r["messages"] for r in b],),
            make_rows=make_rows,
            desc=f"round {ctx.round} judge",
        )
        # whole role-played dialogues get the same 5-attribute score; datasets keeps those above the threshold
        dout, dmetrics = map_parts(
            ctx,
            "judge",
            f"{fp}/dialogues",
            pool,
            "score",
            batched(dialogues, ctx.cfg.engine.batch_size),
            make_args=lambda b: ([r["messages"] for r in b],),
            make_rows=make_rows,
            desc=f"round {ctx.round} judge dialogues",
        )
        metrics["dialogues_scored"] = dout["count"]
        scored = list(read_output(ctx, {"stage": "judge", "outputs": {"scored": out}}, "scored"))
        rewards = [r["reward"] for r in scored]
        if rewards:
            metrics.update(reward_mean=sum(rewards) / len(rewards), reward_min=min(rewards), reward_max=max(rewards))
        outputs = {"scored": out, "dialogues_scored": dout}
        if jc.llm_judge:
            extra, llm_metrics = llm_judge(ctx, fp, scored)
            outputs.update(extra)
            metrics.update(llm_metrics)
        return outputs, metrics

    dfp = dman["fingerprint"] if dman else None
    scoring = {k: v for k, v in section(jc).items() if k in SCORING_KEYS}
    fp_parts = [rman["fingerprint"], dfp, rm, scoring] + ([judge_model(ctx)] if jc.llm_judge else [])
    inputs = {"responses": rman["fingerprint"], **({"dialogues": dfp} if dfp else {})}
    return run_once(ctx, "judge", fp_parts, body, inputs=inputs)
