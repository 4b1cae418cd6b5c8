"""Stage ``datasets``: SFT sets (code / general) and preference pairs from the judged responses.

Outputs load with ``datasets.load_dataset("json", data_files=...)`` and follow TRL's columns
(``messages``; ``prompt``/``chosen``/``rejected``) plus our reward and lineage columns.
"""

from __future__ import annotations

from flywheel.judges.select import select_preferences, select_sft_rows
from flywheel.stages.common import Context, lineage, read_output, run_stage, section, write_parts

CODE_KINDS = ("code",)


def run(ctx: Context) -> dict:
    jman = ctx.manifest("judge")
    jc = ctx.cfg.judges

    def body(fp: str):
        scored = list(read_output(ctx, jman, "scored"))
        lin = lineage(ctx, "datasets", fp, generator=scored[0]["generator"] if scored else None,
                      judge=scored[0]["judge"] if scored else None)
        sft, sft_stats = select_sft_rows(scored, jc.sft_threshold, best_only=jc.sft_best_only,
                                         use_verifiers=jc.use_verifiers)
        pairs, pair_stats = select_preferences(scored, policy=jc.policy, min_gap=jc.min_gap,
                                               use_verifiers=jc.use_verifiers, seed=jc.seed)
        sft = [{**r, "lineage": lin} for r in sft]
        pairs = [{**p, "lineage": lin} for p in pairs]
        code = [r for r in sft if r.get("kind") in CODE_KINDS]
        general = [r for r in sft if r.get("kind") not in CODE_KINDS]
        outputs = {
            "sft_code": write_parts(ctx, "datasets", f"{fp}/sft_code", code),
            "sft_general": write_parts(ctx, "datasets", f"{fp}/sft_general", general),
            "preference": write_parts(ctx, "datasets", f"{fp}/preference", pairs),
        }
        metrics = {"sft_code": len(code), "sft_general": len(general), "preference": len(pairs),
                   **{f"sft/{k}": v for k, v in sft_stats.as_dict().items()},
                   **{f"pairs/{k}": v for k, v in pair_stats.as_dict().items()}}
        return outputs, metrics

    return run_stage(ctx, "datasets", [jman["fingerprint"], section(jc)], body, inputs={"judge": jman["fingerprint"]})
