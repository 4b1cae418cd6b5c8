"""Stage ``prompts``: the report's synthetic prompts from the round's generator, plus prompts from files.

Nemotron-4 340B report, section 3.2.1: open Q&A (topics -> subtopics -> questions -> refinement), writing tasks
per document type (refined), closed Q&A over supplied documents, math and Python problems from keywords,
verifiable instruction-following prompts (single-turn, multi-turn, second-turn revision) and two-turn prompts.
The pipelines live in :mod:`flywheel.sdg.pipelines` (builders/collectors around one ``ask``); every
generation step streams its replies to parts (:class:`flywheel.stages.asker.StepAsker`), so a killed stage
resumes without regenerating finished batches. The rows then pass the quality filters one at a time (length,
format, refusal, exact and near-duplicate removal) on their way to the output parts; each filter's removals
are stage metrics, which ``run_once`` logs to MLflow.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice

from flywheel.config import builtin_or_path
from flywheel.errors import FlywheelError
from flywheel.readers import read_jsonl
from flywheel.sdg import templates
from flywheel.sdg.config import SDGConfig, with_defaults
from flywheel.sdg.pipelines import (
    Ask,
    Item,
    closed_qa_requests,
    collect_closed_qa,
    collect_list,
    collect_problems,
    collect_refined,
    followup_requests,
    if_answer_requests,
    if_rows,
    merge_topics,
    plan_if,
    problem_requests,
    refine_requests,
    two_turn_answer_requests,
    two_turn_firsts,
    two_turn_rows,
)
from flywheel.sdg.quality import ExactDeduper, NearDeduper, is_refusal, is_well_formed, last_text, row_text
from flywheel.sdg.rows import make_prompt_row, split_for
from flywheel.stages.asker import StepAsker, sampling_hash
from flywheel.stages.common import Context, lineage, read_prompt_file, run_once, section, write_parts
from flywheel.stages.roles import chat_pool, generator, model_dir
from flywheel.store import fingerprint

log = logging.getLogger("flywheel")


def topical_items(ask: Ask, sdg: SDGConfig, skipped: Counter) -> list[Item]:
    """Open Q&A and writing: macro topics (merged with the user's) -> subtopics -> questions / writing tasks
    (-> refinement). ``sdg`` must carry its defaults (``with_defaults``)."""
    on = set(sdg.pipelines)
    replies = ask("topics", [("macro", templates.macro_topics_prompt(len(sdg.topics)), "prompt")])
    topics = merge_topics(sdg.topics, collect_list(replies, ["macro"], len(sdg.topics), skipped, "macro_topics")[0])
    sub_reqs = [(f"sub/{i}", templates.subtopics_prompt(t, sdg.n_subtopics), "prompt") for i, t in enumerate(topics)]
    replies = ask("subtopics", sub_reqs)
    subs = collect_list(replies, [k for k, _, _ in sub_reqs], sdg.n_subtopics, skipped, "subtopics")
    # a topic itself seeds questions too, so a weak generator that lists no subtopics still yields prompts
    seeds = [(t, t) for t in topics] + [(t, s) for t, ss in zip(topics, subs) for s in ss]
    pairs = [(d, t) for d in sdg.doc_types for t in topics] if "writing" in on else []
    q_reqs = (
        [
            (f"q/{i}", templates.questions_prompt(s, sdg.questions_per_subtopic), "prompt")
            for i, (_, s) in enumerate(seeds)
        ]
        if "open_qa" in on
        else []
    )
    w_reqs = [
        (f"w/{i}", templates.writing_tasks_prompt(d, t, sdg.writing_per_type), "prompt")
        for i, (d, t) in enumerate(pairs)
    ]
    replies = ask("questions_writing", q_reqs + w_reqs)
    drafts: list[Item] = []
    lists = collect_list(
        replies,
        [k for k, _, _ in q_reqs],
        sdg.questions_per_subtopic,
        skipped,
        "questions",
        max_chars=1000,
        min_chars=10,
    )
    for (topic, sub), qs in zip(seeds, lists):
        drafts += [Item("open_qa", q, {"topic": topic, "subtopic": sub}, "questions_prompt") for q in qs]
    lists = collect_list(
        replies, [k for k, _, _ in w_reqs], sdg.writing_per_type, skipped, "writing", max_chars=1000, min_chars=10
    )
    for (doc_type, topic), ws in zip(pairs, lists):
        drafts += [Item("writing", w, {"doc_type": doc_type, "topic": topic}, "writing_tasks_prompt") for w in ws]
    if sdg.refine and drafts:
        drafts = collect_refined(drafts, ask("refine", refine_requests(drafts)), skipped)
    return drafts


def synthesize(ask: Ask, sdg: SDGConfig, documents: list[str], file_firsts: list[str]) -> tuple[list[dict], Counter]:
    """Every enabled pipeline of ``sdg.pipelines``, chained through ``ask``.

    Args:
        ask: ``(step, [(key, messages, sampling name)]) -> {key: text}``: the engine (or a test's fake).
        sdg: the ``sdg`` config section.
        documents: closed Q&A source texts.
        file_firsts: single-turn prompts from files, used first as two-turn first turns.

    Returns:
        (prompt rows without base lineage, skip counts by reason).
    """
    sdg = with_defaults(sdg)
    on = set(sdg.pipelines)
    rng = random.Random(sdg.seed)
    skipped: Counter = Counter()
    reqs = {
        kind: problem_requests(kind, kws, sdg.problems_per_keyword) if kind in on else []
        for kind, kws in (("math", sdg.math_keywords), ("code", sdg.code_keywords))
    }
    reqs["closed_qa"] = (
        closed_qa_requests(documents, sdg.closed_qa_per_document, sdg.closed_qa_max_doc_chars)
        if "closed_qa" in on
        else []
    )
    replies = ask("problems_closed_qa", reqs["math"] + reqs["code"] + reqs["closed_qa"])
    items = collect_problems("math", reqs["math"], sdg.math_keywords, replies, skipped)
    items += collect_problems("code", reqs["code"], sdg.code_keywords, replies, skipped)
    items += collect_closed_qa(reqs["closed_qa"], documents, sdg.closed_qa_max_doc_chars, replies, skipped)
    if on & {"open_qa", "writing"}:
        items += topical_items(ask, sdg, skipped)
    plans = plan_if(items, sdg, rng, skipped, shapes=[s for s in ("if_single", "if_multi", "if_revision") if s in on])
    firsts = two_turn_firsts(file_firsts, items, sdg.two_turn_count, rng) if "two_turn" in on else []
    answers = ask("answers", if_answer_requests(plans) + two_turn_answer_requests(firsts))
    followups = ask("followups", followup_requests(firsts, answers, skipped))
    rows = [make_prompt_row(it.kind, it.text, meta=it.meta, lineage={"template": it.template}) for it in items]
    return rows + if_rows(plans, answers, skipped) + two_turn_rows(firsts, answers, followups, skipped), skipped


def quality_filter(rows: Iterable[dict], sdg: SDGConfig, removed: Counter) -> Iterator[dict]:
    """Rows that pass, in order: length of the last user turn, format, refusal, exact and near duplicates.

    Streams: only hashes and MinHash signatures are remembered. ``removed`` counts each filter's drops.
    """
    exact = ExactDeduper()
    near = NearDeduper(sdg.dedup_threshold, sdg.minhash_perms, seed=sdg.seed)
    for row in rows:
        text, last = row_text(row), last_text(row).strip()
        if not sdg.min_prompt_chars <= len(last) <= sdg.max_prompt_chars:
            removed["length"] += 1
        elif not is_well_formed(text):
            removed["format"] += 1
        elif is_refusal(last):
            removed["refusal"] += 1
        elif not exact.add(text):
            removed["exact_dup"] += 1
        elif not near.add(text):
            removed["near_dup"] += 1
        else:
            yield row


def interleave(rows: list[dict]) -> list[dict]:
    """Rows dealt round-robin by kind (kinds in first-seen order), so a ``max_prompts`` cap keeps a mix."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["kind"], []).append(row)
    out: list[dict] = []
    for i in range(max((len(g) for g in groups.values()), default=0)):
        out += [g[i] for g in groups.values() if i < len(g)]
    return out


def read_documents(spec: str) -> list[str]:
    """Closed Q&A sources: a JSONL file of ``{"text": ...}`` rows (``builtin:NAME`` or a path/URI)."""
    path = builtin_or_path(spec)
    docs = []
    for i, row in enumerate(read_jsonl(path), 1):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise FlywheelError(f"{path}:{i}: closed Q&A document needs a non-empty 'text'")
        docs.append(text)
    return docs


def within_context(rows: list[dict], count_tokens, budget: int, removed: Counter) -> list[dict]:
    """The rows whose prompt (chat template and generation prompt included) leaves ``budget`` tokens' room.

    A longer one would stop the engine for the whole batch; each is dropped, counted in ``removed`` under
    ``too_long`` and named in a warning with its source file and id.
    """
    kept = []
    for row in rows:
        n = count_tokens(row["messages"])
        if n > budget:
            removed["too_long"] += 1
            log.warning(
                "prompt %s from %s: %d tokens, more than the %d the context leaves after the answer; dropped",
                row.get("id"),
                row.get("lineage", {}).get("source"),
                n,
                budget,
            )
            continue
        kept.append(row)
    return kept


def _token_counter(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)

    def count(messages: list[dict]) -> int:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    return count


def run(ctx: Context) -> dict:
    gen = generator(ctx)
    g, sdg, eng = ctx.cfg.generation, ctx.cfg.sdg, ctx.cfg.engine
    samplings = {"prompt": section(g.prompt_sampling), "answer": section(g.answer_sampling)}
    documents = (
        read_documents(sdg.closed_qa_documents) if sdg.closed_qa_documents and "closed_qa" in sdg.pipelines else []
    )

    def body(fp: str):
        lin = lineage(ctx, "prompts", fp, generator=gen["id"], judge=None, sampling_hash=sampling_hash(samplings))
        file_rows = [
            {**r, "lineage": {**lin, "pipeline": "file", "source": spec}}
            for spec in g.prompt_files
            for r in read_prompt_file(spec)
        ]
        removed: Counter = Counter()
        if file_rows:
            budget = eng.max_model_len - g.response_sampling.max_tokens
            count = _token_counter(model_dir(ctx, gen["uri"], "generator"))
            file_rows = within_context(file_rows, count, budget, removed)
        ask = StepAsker(
            ctx,
            "prompts",
            fp,
            lambda: chat_pool(ctx, gen["uri"], "generator"),
            samplings,
            eng.batch_size,
            eng.num_actors,
        )
        firsts = [r["messages"][0]["content"] for r in file_rows if len(r["messages"]) == 1]
        synth, skipped = synthesize(ask, sdg, documents, firsts)
        for row in synth:
            row["split"] = split_for(row["id"], sdg.heldout_fraction)
            row["lineage"] = {**lin, "pipeline": row["kind"], **row["lineage"]}
        kinds: Counter = Counter()

        def kept() -> Iterator[dict]:
            stream = quality_filter(interleave(file_rows + synth), sdg, removed)
            for row in islice(stream, g.max_prompts or None):
                kinds[row["kind"]] += 1
                yield row

        out = write_parts(ctx, "prompts", f"{fp}/prompts", kept())
        gen_m = ask.metrics()
        log.info(
            "round %d prompts: %d kept %s; generated %d tokens at %.1f tok/s",
            ctx.round,
            out["count"],
            dict(sorted(kinds.items())),
            gen_m["gen_tokens"],
            gen_m["tokens_per_s"],
        )
        metrics = {
            "prompts": out["count"],
            "generated_raw": len(file_rows) + len(synth),
            **{f"kind/{k}": v for k, v in sorted(kinds.items())},
            **{f"removed/{k}": v for k, v in sorted(removed.items())},
            **{f"skipped/{k}": v for k, v in sorted(skipped.items())},
            **gen_m,
        }
        return {"prompts": out}, metrics

    return run_once(
        ctx,
        "prompts",
        [
            gen,
            samplings,
            section(sdg),
            list(g.prompt_files),
            g.max_prompts,
            fingerprint(documents),
            *([eng.max_model_len, g.response_sampling.max_tokens] if g.prompt_files else []),
        ],
        body,
    )
