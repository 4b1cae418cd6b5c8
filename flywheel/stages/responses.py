"""Stage ``responses``: k sampled responses per training prompt from one or more generator models (vLLM on Ray).

Nemotron-4 340B report, section 3.2.3: responses for preference data come from several models, so a pair can
contrast models as well as samples. ``generation.response_models`` lists model paths/URIs (empty: the round's
generator alone); each model gives ``generation.samples_per_prompt`` samples with
``generation.response_sampling``. Sample indices run on across models (model m owns samples m*k .. m*k+k-1), so
a response id is unique per prompt. Each batch is written as its own part as soon as it finishes.

With ``generation.retry_samples`` = r > 0, a prompt with a verifier (instructions, a known answer) whose samples
all fail it, none repairable (:func:`flywheel.judges.repair.unsolved`), is sampled r more times by the first
response model (sample indices after the others): the report's pairs come first from verifiers, and where the
generator is weakest k samples rarely include a verified one.
"""

from __future__ import annotations

import os
from collections import defaultdict
from itertools import islice

from flywheel.judges.repair import unsolved
from flywheel.stages.asker import even_batches, sampling_hash
from flywheel.stages.common import Context, lineage, map_parts, read_output, run_once, section
from flywheel.stages.roles import chat_pool, generator


def response_models(ctx: Context) -> list[dict]:
    """``[{"uri", "id"}]``: the configured response models, or the round's generator."""
    listed = list(ctx.cfg.generation.response_models)
    if not listed:
        return [generator(ctx)]
    return [{"uri": uri, "id": f"model:{os.path.basename(uri.rstrip('/'))}"} for uri in listed]


def _rows(batch: list[dict], out: dict, first: int, model: dict, lin: dict) -> list[dict]:
    """One response row per sample; sample indices from ``first`` on; ``finished`` False where the sample was cut
    at ``max_tokens`` (such a response is never chosen, see :mod:`flywheel.judges.select`)."""
    rows = []
    finished = out.get("finished") or [[True] * len(t) for t in out["texts"]]
    for prompt, samples, done in zip(batch, out["texts"], finished):
        for s, (text, complete) in enumerate(zip(samples, done), start=first):
            rows.append(
                {
                    "id": f"{prompt['id']}-{s}",
                    "prompt_id": prompt["id"],
                    "kind": prompt.get("kind"),
                    "meta": prompt.get("meta", {}),
                    "messages": prompt["messages"] + [{"role": "assistant", "content": text}],
                    "sample": s,
                    "finished": bool(complete),
                    "generator": model["id"],
                    "lineage": {
                        **lin,
                        "pipeline": prompt.get("kind"),
                        "template": prompt.get("lineage", {}).get("template"),
                    },
                }
            )
    return rows


def run(ctx: Context) -> dict:
    models = response_models(ctx)
    pm = ctx.manifest("prompts")
    g = ctx.cfg.generation
    sampling = section(g.response_sampling)
    k = g.samples_per_prompt

    def body(fp: str):
        train = (r for r in read_output(ctx, pm, "prompts") if r.get("split", "train") == "train")
        # the prompt stage writes its rows interleaved by kind, so the first N are a mix of kinds
        prompts = list(islice(train, g.response_prompts or None))
        parts, metrics = [], {"prompts": len(prompts), "rows": 0, "tokens": 0, "wall_seconds": 0.0}
        lins = [
            lineage(
                ctx, "responses", fp, generator=m["id"], judge=None, sampling_hash=sampling_hash({"response": sampling})
            )
            for m in models
        ]

        def sample(m: int, sub: str, batch_prompts: list[dict], n: int, first: int, desc: str) -> dict:
            """``n`` samples of each prompt from model ``m``, indices from ``first``; returns map_parts' metrics."""
            # engine.batch_size counts sequences: each prompt here is sampled n times
            batches = even_batches(batch_prompts, max(1, ctx.cfg.engine.batch_size // n), ctx.cfg.engine.num_actors)
            out, mm = map_parts(
                ctx,
                "responses",
                sub,
                chat_pool(ctx, models[m]["uri"], "response model"),
                "chat",
                batches,
                make_args=lambda b: ([p["messages"] for p in b], sampling, n),
                make_rows=lambda b, res: _rows(b, res, first, models[m], lins[m]),
                desc=desc,
            )
            parts.extend(out["parts"])
            for key in ("rows", "tokens", "wall_seconds"):
                metrics[key] += mm[key]
            return mm

        for m, model in enumerate(models):
            sub = fp if len(models) == 1 else f"{fp}/model-{m}"
            mm = sample(m, sub, prompts, k, m * k, f"round {ctx.round} responses ({model['id']})")
            metrics[f"tokens_per_s/{model['id']}"] = mm["tokens_per_s"]
        if g.retry_samples and prompts:
            texts: dict[str, list[str]] = defaultdict(list)
            for row in read_output(ctx, {"stage": "responses", "outputs": {"o": {"parts": parts}}}, "o"):
                texts[row["prompt_id"]].append(row["messages"][-1]["content"])
            hard = [p for p in prompts if unsolved(p.get("meta"), texts[p["id"]])]
            metrics["retry_prompts"] = len(hard)
            if hard:
                first = len(models) * k
                sample(0, f"{fp}/retry", hard, g.retry_samples, first, f"round {ctx.round} responses (retries)")
        wall = metrics["wall_seconds"]
        metrics["tokens_per_s"] = round(metrics["tokens"] / wall, 2) if wall else 0.0
        return {"responses": {"parts": parts, "count": metrics["rows"]}}, metrics

    # one model hashes as before the list existed, so runs made then are still recognised as done
    fp_parts = [pm["fingerprint"], models[0] if len(models) == 1 else models, sampling, k]
    return run_once(
        ctx,
        "responses",
        fp_parts
        + ([g.response_prompts] if g.response_prompts else [])
        + ([{"retry_samples": g.retry_samples}] if g.retry_samples else []),
        body,
        inputs={"prompts": pm["fingerprint"]},
    )
