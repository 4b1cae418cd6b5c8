"""Stage ``datasets``: SFT sets (code / general) and preference pairs from the judged responses.

Role-played dialogues scored by the judge join the general SFT set when their reward reaches
``judges.dialogue_threshold`` (None keeps all).

Preference pairs: ground truth first (judge ``verifier``; with ``judges.repair``, a prompt whose responses all
fail their verifiers pairs a mechanical repair of its best response with it, judge ``verifier_repair``); the
remaining prompts are decided by the reward model, or, when the judge stage ran an LLM judge (output
``llm_pairs``), by the pairs on which both of its orders agreed (judge ``llm_judge``). Verifier and LLM-judge
pairs get rewards whose gap has the judged sign, at least ``judges.min_judged_gap``
(``flywheel.judges.gaps.judged_gap``): RPO trains towards that gap.

With ``judges.if_variants`` > 0, each chosen response to a plain prompt also yields instruction variants
(``flywheel.judges.variants``): SFT rows of kind ``if_variant`` and, with ``judges.variant_pairs``,
``verifier_repair`` pairs (``variants/*`` counts); with ``judges.variant_focus``, their kinds are drawn by how
often the generator failed each on the round's own instruction-following prompts (``variants/focus/<kind>``).

Metrics: the ``sft/*`` and ``pairs/*`` counts of ``SelectionStats.as_dict`` (``pairs/rpo_sign_adjusted``,
``pairs/repaired``, ``pairs/repair_failed/<reason>``, ``sft/repaired``, ``sft/repair_failed/<reason>`` among
them).

Each set gets a dataset card (``README.md``: schema, counts by kind and judge, generator, judge, config hash)
beside its parts, JSONL or (``run.dataset_format: parquet``) Parquet. Outputs load with
``datasets.load_dataset("json" | "parquet", data_files=...)`` and follow TRL's columns
(``messages``; ``prompt``/``chosen``/``rejected``) plus our reward and lineage columns.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flywheel import __version__
from flywheel.errors import FlywheelError
from flywheel.judges.candidates import mark_cut
from flywheel.judges.gaps import judged_gaps
from flywheel.judges.select import select_preferences
from flywheel.judges.sft_select import select_dialogues, select_sft_rows
from flywheel.judges.variants import instruction_variants, kind_failure_weights, second_answers
from flywheel.stages.common import Context, lineage, read_output, run_once, section, write_parts
from flywheel.store import round_dir

SETS = {
    "sft_code": "supervised fine-tuning rows for the code stage (chosen responses to code prompts)",
    "sft_general": "supervised fine-tuning rows (chosen responses, role-played dialogues, instruction variants)",
    "preference": "preference pairs for DPO / RPO (chosen and rejected answers to one prompt, with rewards)",
}


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list of turns" if value and isinstance(value[0], Mapping) and "role" in value[0] else "list"
    if isinstance(value, Mapping):
        return "object"
    return "null" if value is None else type(value).__name__


def dataset_card(name: str, rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any], files: Iterable[str]) -> str:
    """The ``README.md`` of one published set (pure): what it is, schema, counts, lineage, how to load it."""
    schema: dict[str, set[str]] = {}
    for row in rows:
        for key, value in row.items():
            schema.setdefault(key, set()).add(_type(value))
    kinds = Counter(str(r.get("kind", "-")) for r in rows)
    judges = Counter(str(r.get("judge")) for r in rows if "judge" in r)
    lines = [
        f"# {name}",
        "",
        SETS.get(name, "a flywheel dataset"),
        "",
        f"- rows: {len(rows)}",
        f"- round: {info.get('round')}, stage fingerprint (config hash): `{info.get('config_hash')}`",
        f"- generator: `{info.get('generator')}`; judge: `{info.get('judge')}`",
        f"- written by flywheel {__version__}",
        "",
        "## Schema",
        "",
        "| column | type |",
        "|---|---|",
        *[f"| `{k}` | {' or '.join(sorted(v))} |" for k, v in schema.items()],
        "",
        "## Counts",
        "",
        "| kind | rows |",
        "|---|---|",
        *[f"| {k} | {n} |" for k, n in sorted(kinds.items())],
    ]
    if judges:
        lines += ["", "| judge | pairs |", "|---|---|", *[f"| {k} | {n} |" for k, n in sorted(judges.items())]]
    names = [f.rsplit("/", 1)[-1] for f in files]
    builder = "parquet" if names and names[0].endswith(".parquet") else "json"
    lines += [
        "",
        "## Load",
        "",
        "```python",
        "import datasets",
        f'ds = datasets.load_dataset("{builder}", data_files={json.dumps(names)}, split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)


CODE_KINDS = ("code",)
# Judges whose pairs ground truth settled; the LLM judge does not overrule them.
SETTLED_BY = ("verifier", "verifier_repair")


def merge_llm_pairs(pairs: list[dict], llm_pairs: list[dict], by_judge) -> list[dict]:
    """Verifier (and verifier-repair) pairs, then LLM-judge pairs for the other prompts (reward-model pairs are
    replaced).

    ``by_judge`` (a Counter) is updated to count what is kept.
    """
    verified = [p for p in pairs if p["judge"] in SETTLED_BY]
    settled = {p["prompt_id"] for p in verified}
    llm = [{k: v for k, v in p.items() if k != "lineage"} for p in llm_pairs if p.get("prompt_id") not in settled]
    repaired = sum(p["judge"] == "verifier_repair" for p in verified)
    by_judge.clear()
    by_judge.update({"verifier": len(verified) - repaired, "llm_judge": len(llm)})
    if repaired:
        by_judge["verifier_repair"] = repaired
    return verified + llm


def run(ctx: Context) -> dict:
    jman = ctx.manifest("judge")
    jc = ctx.cfg.judges

    def body(fp: str):
        scored = list(read_output(ctx, jman, "scored"))
        truncated = sum(r.get("finished") is False for r in scored)
        if not jc.complete_only:  # every response counts as complete; a cut one is marked so no end is learned
            scored = [mark_cut(r) for r in scored]
        lin = lineage(
            ctx,
            "datasets",
            fp,
            generator=scored[0]["generator"] if scored else None,
            judge=scored[0]["judge"] if scored else None,
        )
        sft, sft_stats = select_sft_rows(
            scored, jc.sft_threshold, best_only=jc.sft_best_only, use_verifiers=jc.use_verifiers, repair=jc.repair
        )
        pairs, pair_stats = select_preferences(
            scored,
            policy=jc.policy,
            min_gap=jc.min_gap,
            use_verifiers=jc.use_verifiers,
            seed=jc.seed,
            min_judged_gap=jc.min_judged_gap,
            repair=jc.repair,
        )
        if "llm_pairs" in jman["outputs"]:
            pairs = merge_llm_pairs(pairs, list(read_output(ctx, jman, "llm_pairs")), pair_stats.by_judge)
            # the verifier pairs follow the sign rule already; this counts the LLM-judge pairs it changes
            pairs, adjusted = judged_gaps(pairs, jc.min_judged_gap)
            pair_stats.rpo_sign_adjusted += adjusted
        dialogues: list[dict] = []
        dropped = 0
        if "dialogues_scored" in jman["outputs"]:
            dialogues, dropped = select_dialogues(
                read_output(ctx, jman, "dialogues_scored"), jc.dialogue_threshold, jc.dialogue_keep
            )
        variant_counts: dict[str, float] = {}
        if jc.if_variants > 0:
            metas = {r.get("prompt_id"): r.get("meta") for r in scored}
            focus = kind_failure_weights(scored) if jc.variant_focus and not jc.variant_derived else None
            vsft, vpairs, counts = instruction_variants(
                sft,
                metas,
                jc.if_variants,
                jc.seed,
                jc.min_judged_gap,
                derived=jc.variant_derived,
                seconds=second_answers(scored, sft),
                focus=focus,
            )
            sft, pairs = sft + vsft, pairs + (vpairs if jc.variant_pairs else [])
            variant_counts = {f"variants/{k}": v for k, v in sorted(counts.items())}
            variant_counts.update({f"variants/focus/{k}": round(w, 3) for k, w in sorted((focus or {}).items())})
        if not pairs:  # DPO and RPO would fail after SFT, an hour later: stop here, saying why
            why = ", ".join(f"{k} {v}" for k, v in sorted(pair_stats.as_dict().items()) if v and "/" in k)
            raise FlywheelError(
                f"round {ctx.round} datasets: no preference pair survived selection from {len(scored)} judged "
                f"responses ({why or 'no prompt had two responses'}); raise generation.samples_per_prompt or "
                "lower judges.min_gap"
            )
        sft = [{**r, "lineage": lin} for r in sft + dialogues]
        pairs = [{**p, "lineage": lin} for p in pairs]
        code = [r for r in sft if r.get("kind") in CODE_KINDS]
        general = [r for r in sft if r.get("kind") not in CODE_KINDS]
        outputs = {}
        for name, rows in (("sft_code", code), ("sft_general", general), ("preference", pairs)):
            out = write_parts(ctx, "datasets", f"{fp}/{name}", rows, fmt=fmt)
            card = dataset_card(name, rows, lin, [p["uri"] for p in out["parts"]])
            ctx.store.write_bytes(ctx.store.uri(round_dir(ctx.round), "datasets", fp, name, "README.md"), card.encode())
            outputs[name] = out
        metrics = {
            "sft_code": len(code),
            "sft_general": len(general),
            "preference": len(pairs),
            "responses_truncated": truncated,
            "sft/dialogues_kept": len(dialogues),
            "sft/dialogues_below_threshold": dropped,
            **{f"sft/{k}": v for k, v in sft_stats.as_dict().items()},
            **{f"pairs/{k}": v for k, v in pair_stats.as_dict().items()},
            **variant_counts,
        }
        return outputs, metrics

    fmt = ctx.cfg.run.dataset_format
    fp_parts = [jman["fingerprint"], section(jc)] + ([fmt] if fmt != "jsonl" else [])
    return run_once(ctx, "datasets", fp_parts, body, inputs={"judge": jman["fingerprint"]})
