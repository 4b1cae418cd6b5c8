"""Stage ``responses``: k sampled responses per training prompt from the round's generator (vLLM on Ray)."""

from __future__ import annotations

from flywheel.stages.common import Context, batched, lineage, map_parts, read_output, run_stage, section
from flywheel.stages.runtime import engines, generator, model_dir


def run(ctx: Context) -> dict:
    gen = generator(ctx)
    pm = ctx.manifest("prompts")
    g = ctx.cfg.generation
    sampling = section(g.response_sampling)

    def body(fp: str):
        prompts = [r for r in read_output(ctx, pm, "prompts") if r.get("split", "train") == "train"]
        pool = engines(ctx).chat(model_dir(ctx, gen["uri"], "generator"))
        lin = lineage(ctx, "responses", fp, generator=gen["id"], judge=None)

        def make_rows(batch: list[dict], out: dict) -> list[dict]:
            rows = []
            for prompt, texts in zip(batch, out["texts"]):
                for s, text in enumerate(texts):
                    rows.append({"id": f"{prompt['id']}-{s}", "prompt_id": prompt["id"], "kind": prompt.get("kind"),
                                 "meta": prompt.get("meta", {}),
                                 "messages": prompt["messages"] + [{"role": "assistant", "content": text}],
                                 "sample": s, "generator": gen["id"], "lineage": lin})
            return rows

        out, metrics = map_parts(
            ctx, "responses", fp, pool, "chat", batched(prompts, ctx.cfg.engine.batch_size),
            make_args=lambda b: ([p["messages"] for p in b], sampling, g.samples_per_prompt),
            make_rows=make_rows, desc=f"round {ctx.round} responses")
        metrics["prompts"] = len(prompts)
        return {"responses": out}, metrics

    return run_stage(ctx, "responses", [pm["fingerprint"], gen, sampling, g.samples_per_prompt], body,
                     inputs={"prompts": pm["fingerprint"]})
