"""Stage ``prompts``: synthetic prompts from the generator plus prompts from files.

Open Q&A as in the Nemotron-4 340B report: macro topics -> subtopics -> questions -> refinement, each step
one batched call to the generator's engine pool; malformed outputs are skipped and counted.
"""

from __future__ import annotations

from collections import Counter

from flywheel.sdg import parse, templates
from flywheel.sdg.defaults import DEFAULT_TOPICS
from flywheel.sdg.quality import exact_dedup, near_dedup
from flywheel.sdg.rows import make_prompt_row
from flywheel.stages.common import Context, batched, lineage, read_prompt_file, run_stage, section, write_parts
from flywheel.stages.runtime import engines, generator, model_dir


def chat_all(pool, conversations: list[list[dict]], sampling: dict, batch_size: int) -> list[str]:
    """One completion per conversation, in order (batched over the pool's actors)."""
    out: dict[int, list[str]] = {}
    jobs = [(i, (b, sampling, 1)) for i, b in enumerate(batched(conversations, batch_size))]
    pool.map("chat", jobs, lambda i, r: out.__setitem__(i, [t[0] for t in r["texts"]]))
    return [t for i in sorted(out) for t in out[i]]


def open_qa(pool, sdg, sampling: dict, batch_size: int, skipped: Counter) -> list[tuple[str, dict]]:
    """(question, meta) pairs: topics -> subtopics -> questions (-> refined questions)."""
    topics = list(sdg.topics) or list(DEFAULT_TOPICS)
    replies = chat_all(pool, [templates.subtopics_prompt(t, sdg.n_subtopics) for t in topics], sampling, batch_size)
    subtopics: list[tuple[str, str]] = []
    for topic, text in zip(topics, replies):
        items = parse.parse_list(text, sdg.n_subtopics)
        if not items:
            skipped["subtopics_unparsed"] += 1
        subtopics += [(topic, s) for s in items]
    # the macro topic itself always seeds questions, so a weak generator still yields prompts
    seeds = [(t, t) for t in topics] + subtopics
    replies = chat_all(pool, [templates.questions_prompt(s, sdg.questions_per_subtopic) for _, s in seeds],
                       sampling, batch_size)
    questions: list[tuple[str, dict]] = []
    for (topic, sub), text in zip(seeds, replies):
        items = parse.parse_list(text, sdg.questions_per_subtopic, max_chars=1000, min_chars=10)
        if not items:
            skipped["questions_unparsed"] += 1
        questions += [(q, {"topic": topic, "subtopic": sub}) for q in items]
    if sdg.refine and questions:
        replies = chat_all(pool, [templates.refine_question_prompt(q) for q, _ in questions], sampling, batch_size)
        refined = []
        for (q, meta), text in zip(questions, replies):
            better = parse.parse_single(text)
            if better is None:
                skipped["refine_unparsed"] += 1
            refined.append((better or q, {**meta, "refined": better is not None}))
        questions = refined
    return questions


def run(ctx: Context) -> dict:
    gen = generator(ctx)
    g, sdg = ctx.cfg.generation, ctx.cfg.sdg
    sampling = section(g.prompt_sampling)

    def body(fp: str):
        lin = lineage(ctx, "prompts", fp, generator=gen["id"], judge=None)
        skipped: Counter = Counter()
        rows = []
        for spec in g.prompt_files:
            for r in read_prompt_file(spec):
                rows.append({**r, "lineage": {**lin, "source": spec}})
        if "open_qa" in sdg.pipelines:
            pool = engines(ctx).chat(model_dir(ctx, gen["uri"], "generator"))
            for q, meta in open_qa(pool, sdg, sampling, ctx.cfg.engine.batch_size, skipped):
                rows.append(make_prompt_row("open_qa", q, meta=meta, lineage={**lin, "pipeline": "open_qa"}))
        n_raw = len(rows)
        rows, n_exact = exact_dedup(rows)
        rows, n_near = near_dedup(rows, threshold=sdg.dedup_threshold, num_perm=sdg.minhash_perms)
        if g.max_prompts:
            rows = rows[: g.max_prompts]
        kinds = Counter(r["kind"] for r in rows)
        metrics = {"prompts": len(rows), "generated_raw": n_raw, "removed_exact_dup": n_exact,
                   "removed_near_dup": n_near, **{f"kind/{k}": v for k, v in kinds.items()},
                   **{f"skipped/{k}": v for k, v in skipped.items()}}
        return {"prompts": write_parts(ctx, "prompts", fp, rows)}, metrics

    return run_stage(ctx, "prompts", [gen, sampling, section(sdg), list(g.prompt_files), g.max_prompts], body)
