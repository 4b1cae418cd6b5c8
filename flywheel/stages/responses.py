"""Stage ``responses``: k sampled responses per training prompt from one or more generator models (vLLM on Ray).

Nemotron-4 340B report, section 3.2.3: responses for preference data come from several models, so a pair can
contrast models as well as samples. ``generation.response_models`` lists model paths/URIs (empty: the round's
generator alone); each model gives ``generation.samples_per_prompt`` samples with
``generation.response_sampling``. Sample indices run on across models (model m owns samples m*k .. m*k+k-1), so
a response id is unique per prompt. Each batch is written as its own part as soon as it finishes.
"""

from __future__ import annotations

import os
from itertools import islice

from flywheel.stages.asker import even_batches, sampling_hash
from flywheel.stages.common import Context, lineage, map_parts, read_output, run_once, section
from flywheel.stages.roles import chat_pool, generator


def response_models(ctx: Context) -> list[dict]:
    """``[{"uri", "id"}]``: the configured response models, or the round's generator."""
    listed = list(ctx.cfg.generation.response_models)
    if not listed:
        return [generator(ctx)]
    return [{"uri": uri, "id": f"model:{os.path.basename(uri.rstrip('/'))}"} for uri in listed]


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
        for m, model in enumerate(models):
            pool = chat_pool(ctx, model["uri"], "response model")
            lin = lineage(
                ctx,
                "responses",
                fp,
                generator=model["id"],
                judge=None,
                sampling_hash=sampling_hash({"response": sampling}),
            )

            def make_rows(batch: list[dict], out: dict, m: int = m, model: dict = model, lin: dict = lin) -> list[dict]:
                rows = []
                for prompt, texts in zip(batch, out["texts"]):
                    for s, text in enumerate(texts, start=m * k):
                        rows.append(
                            {
                                "id": f"{prompt['id']}-{s}",
                                "prompt_id": prompt["id"],
                                "kind": prompt.get("kind"),
                                "meta": prompt.get("meta", {}),
                                "messages": prompt["messages"] + [{"role": "assistant", "content": text}],
                                "sample": s,
                                "generator": model["id"],
                                "lineage": {
                                    **lin,
                                    "pipeline": prompt.get("kind"),
                                    "template": prompt.get("lineage", {}).get("template"),
                                },
                            }
                        )
                return rows

            sub = fp if len(models) == 1 else f"{fp}/model-{m}"
            # engine.batch_size counts sequences: each prompt here is sampled k times
            batches = even_batches(prompts, max(1, ctx.cfg.engine.batch_size // k), ctx.cfg.engine.num_actors)
            out, mm = map_parts(
                ctx,
                "responses",
                sub,
                pool,
                "chat",
                batches,
                make_args=lambda b: ([p["messages"] for p in b], sampling, k),
                make_rows=make_rows,
                desc=f"round {ctx.round} responses ({model['id']})",
            )
            parts += out["parts"]
            for key in ("rows", "tokens", "wall_seconds"):
                metrics[key] += mm[key]
            metrics[f"tokens_per_s/{model['id']}"] = mm["tokens_per_s"]
        wall = metrics["wall_seconds"]
        metrics["tokens_per_s"] = round(metrics["tokens"] / wall, 2) if wall else 0.0
        return {"responses": {"parts": parts, "count": metrics["rows"]}}, metrics

    # one model hashes as before the list existed, so runs made then are still recognised as done
    fp_parts = [pm["fingerprint"], models[0] if len(models) == 1 else models, sampling, k]
    return run_once(
        ctx,
        "responses",
        fp_parts + ([g.response_prompts] if g.response_prompts else []),
        body,
        inputs={"prompts": pm["fingerprint"]},
    )
