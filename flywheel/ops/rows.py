"""The rows of ``flywheel compare``: one per round — eval metrics, reward statistics, dataset sizes, stage times.

Two sources give the same flat ``{stage}.{metric}`` view of a round: the store's stage manifests (always
there, authoritative) and the MLflow parent run of the round (metrics ``{stage}.{metric}``, tags round /
generator / promotion). :func:`row` builds a table row from that view, so both sources print alike.
"""

from __future__ import annotations

from typing import Any

# (column header, flat key) groups; a missing key prints as "-".
EVAL = [
    ("cand. reward", "evaluate.candidate_reward"),
    ("gen. reward", "evaluate.generator_reward"),
    ("win rate", "evaluate.win_rate"),
]
SUITES = [
    ("IF prompt strict", "evaluate.candidate_if_prompt_strict"),
    ("IF prompt loose", "evaluate.candidate_if_prompt_loose"),
    ("IF instr. strict", "evaluate.candidate_if_instruction_strict"),
    ("IF instr. loose", "evaluate.candidate_if_instruction_loose"),
    ("math", "evaluate.candidate_math_accuracy"),
    ("verbosity", "evaluate.candidate_reward_verbosity"),
    ("answer chars", "evaluate.candidate_reward_chars"),
    ("IF delta", "promote.if_delta"),
    ("IF delta low", "promote.if_low"),
]
REWARD = [("reward mean", "judge.reward_mean"), ("reward min", "judge.reward_min"), ("reward max", "judge.reward_max")]
SIZES = [
    ("prompts", "prompts.prompts"),
    ("responses", "responses.rows"),
    ("sft code", "datasets.sft_code"),
    ("sft general", "datasets.sft_general"),
    ("pairs", "datasets.preference"),
]
THROUGHPUT = [("gen tok/s", "responses.tokens_per_s")]


def flatten(manifests: dict[str, dict]) -> dict[str, float]:
    """Stage manifests -> ``{"{stage}.{metric}": value}``, the key scheme of the round's MLflow parent run.

    ``{stage}.stage_seconds`` is the manifest's wall time; training stages that share one trainer run have
    none, so their own ``wall_seconds`` stands in.
    """
    flat: dict[str, float] = {}
    for stage, man in manifests.items():
        for k, v in man.get("metrics", {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                flat[f"{stage}.{k}".replace("/", ".")] = float(v)
        if man.get("seconds") is not None:
            flat[f"{stage}.stage_seconds"] = float(man["seconds"])
    return flat


def stage_seconds(flat: dict[str, float], stages: list[str]) -> dict[str, float]:
    """Seconds per stage (manifest time, else the stage's own wall time); stages without either are left out."""
    out = {}
    for s in stages:
        v = flat.get(f"{s}.stage_seconds", flat.get(f"{s}.wall_seconds"))
        if v is not None:
            out[s] = v
    return out


def row(
    round_idx: int, flat: dict[str, float], stages: list[str], generator: str = "", promoted: bool | None = None
) -> dict[str, Any]:
    """One comparison row: identity, every metric column, per-stage seconds and their total."""
    times = stage_seconds(flat, stages)
    out: dict[str, Any] = {"round": round_idx, "generator": generator, "promoted": promoted}
    for header, key in EVAL + SUITES + REWARD + SIZES + THROUGHPUT:
        out[header] = flat.get(key)
    out["stage_seconds"] = times
    out["total seconds"] = round(sum(times.values()), 3) if times else None
    return out


def rows_from_store(store: Any, stages: list[str], rounds: list[int] | None = None) -> list[dict]:
    """Rows from the stage manifests on the store (any fsspec root, s3:// included)."""
    out = []
    initial = _initial_row(store, stages)
    if initial is not None and (not rounds or 0 in rounds):
        out.append(initial)
    for r in store.rounds():
        if r == 0 or (rounds and r not in rounds):
            continue
        mans = {s: m for s in stages if (m := store.manifest(r, s)) is not None}
        if not mans:
            continue
        promo = mans.get("promote", {}).get("outputs", {})
        decision = promo.get("decision") or {}
        gen = _generator_of_round(store, r)
        out.append(
            row(r, flatten(mans), stages, generator=gen, promoted=decision.get("promoted") if decision else None)
        )
    return out


def _initial_row(store: Any, stages: list[str]) -> dict[str, Any] | None:
    """Round 0: the initial model's held-out results (recorded by the first evaluated round) as a row."""
    for r in store.rounds():
        man = store.manifest(r, "evaluate") if r > 0 else None
        if man is None or "initial" not in man.get("outputs", {}):
            continue
        flat = {
            f"evaluate.candidate_{k[len('initial_') :]}": float(v)
            for k, v in man["metrics"].items()
            if k.startswith("initial_") and isinstance(v, (int, float))
        }
        return row(0, flat, stages, generator=man["outputs"]["initial"]["model"], promoted=None)
    return None


def _generator_of_round(store: Any, r: int) -> str:
    """The model that generated round ``r``'s data: the previous round's chosen generator.

    Round 1 has no previous round; its own promotion record names it when it kept the generator.
    """
    if r > 1:
        prev = store.manifest(r - 1, "promote")
        return prev["outputs"]["generator"]["id"] if prev else ""
    own = store.manifest(r, "promote")
    if own and not own["outputs"]["decision"]["promoted"]:
        return own["outputs"]["generator"]["id"]
    return "initial"


def columns() -> list[str]:
    return [h for h, _ in EVAL + SUITES + REWARD + SIZES + THROUGHPUT] + ["total seconds"]


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.0f}" if v.is_integer() and abs(v) >= 1 else f"{v:.4g}"
    return str(v)
