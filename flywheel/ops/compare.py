"""``flywheel compare``: one row per round — eval metrics, reward statistics, dataset sizes, stage times.

Two sources give the same flat ``{stage}.{metric}`` view of a round: the store's stage manifests (always
there, authoritative) and the MLflow parent run of the round (metrics ``{stage}.{metric}``, tags round /
generator / promotion). ``rows()`` builds the table rows from that view, so both sources print alike.
"""

from __future__ import annotations

from typing import Any, Optional

from flywheel.errors import FlywheelError

# (column header, flat key) groups; a missing key prints as "-".
EVAL = [("cand. reward", "evaluate.candidate_reward"), ("gen. reward", "evaluate.generator_reward"),
        ("win rate", "evaluate.win_rate")]
REWARD = [("reward mean", "judge.reward_mean"), ("reward min", "judge.reward_min"), ("reward max", "judge.reward_max")]
SIZES = [("prompts", "prompts.prompts"), ("responses", "responses.rows"), ("sft code", "datasets.sft_code"),
         ("sft general", "datasets.sft_general"), ("pairs", "datasets.preference")]
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


def row(round_idx: int, flat: dict[str, float], stages: list[str], generator: str = "",
        promoted: Optional[bool] = None) -> dict[str, Any]:
    """One comparison row: identity, every metric column, per-stage seconds and their total."""
    times = stage_seconds(flat, stages)
    out: dict[str, Any] = {"round": round_idx, "generator": generator, "promoted": promoted}
    for header, key in EVAL + REWARD + SIZES + THROUGHPUT:
        out[header] = flat.get(key)
    out["stage_seconds"] = times
    out["total seconds"] = round(sum(times.values()), 3) if times else None
    return out


def rows_from_store(store: Any, stages: list[str], rounds: Optional[list[int]] = None) -> list[dict]:
    """Rows from the stage manifests on the store (any fsspec root, s3:// included)."""
    out = []
    for r in store.rounds():
        if rounds and r not in rounds:
            continue
        mans = {s: m for s in stages if (m := store.manifest(r, s)) is not None}
        if not mans:
            continue
        promo = mans.get("promote", {}).get("outputs", {})
        decision = promo.get("decision") or {}
        gen = _generator_of_round(store, r)
        out.append(row(r, flatten(mans), stages, generator=gen,
                       promoted=decision.get("promoted") if decision else None))
    return out


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


def rows_from_mlflow(uri: str, experiment: str, stages: list[str], rounds: Optional[list[int]] = None) -> list[dict]:
    """Rows from the MLflow parent runs (one per round) of ``experiment`` at tracking ``uri``."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise FlywheelError(f"MLflow {uri}: no experiment {experiment!r} (has the run started?)")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`flywheel.round` != ''", max_results=5000)
    parents = {}
    for run in runs:
        if "mlflow.parentRunId" in run.data.tags:
            continue
        r = int(run.data.tags["flywheel.round"])
        if (not rounds or r in rounds) and (r not in parents or run.info.start_time > parents[r].info.start_time):
            parents[r] = run
    out = []
    for r in sorted(parents):
        tags = parents[r].data.tags
        promoted = {"True": True, "False": False}.get(tags.get("flywheel.promoted", ""))
        row_ = row(r, dict(parents[r].data.metrics), stages, generator=tags.get("flywheel.generator", ""),
                   promoted=promoted)
        row_["mlflow_run_id"] = parents[r].info.run_id
        out.append(row_)
    return out


def columns() -> list[str]:
    return [h for h, _ in EVAL + REWARD + SIZES + THROUGHPUT] + ["total seconds"]


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.0f}" if v.is_integer() and abs(v) >= 1 else f"{v:.4g}"
    return str(v)


def table(rows: list[dict], stages: list[str], title: str):
    """A rich Table with a column per round: identity, metric rows, then seconds per stage."""
    from rich.table import Table

    t = Table(title=title)
    t.add_column("")
    for r in rows:
        t.add_column(f"round {r['round']}", justify="right")
    t.add_row("[bold]promoted[/]", *[fmt(r["promoted"]) for r in rows])
    groups = (("eval", EVAL), ("judge", REWARD), ("rows", SIZES), ("speed", THROUGHPUT))
    for name, group in groups:
        t.add_section()
        for i, (header, _) in enumerate(group):
            t.add_row(f"{name}: {header}" if i == 0 else f"      {header}", *[fmt(r[header]) for r in rows])
    t.add_section()
    used = [s for s in stages if any(s in r["stage_seconds"] for r in rows)]
    for i, s in enumerate(used):
        t.add_row(f"{'seconds: ' if i == 0 else '         '}{s}", *[fmt(r["stage_seconds"].get(s)) for r in rows])
    t.add_row("[bold]total seconds[/]", *[fmt(r["total seconds"]) for r in rows])
    return t


def compare(cfg: Any, source: str = "store", out: Optional[str] = None,
            rounds: Optional[list[int]] = None) -> tuple[list[dict], dict[str, str]]:
    """Rows for a run's rounds plus the written report (``out`` defaults to ``{run.root}/reports``).

    Args:
        cfg: the run's ``flywheel.config.Config`` (only ``run``, ``tracking`` and the stage list are read).
        source: ``store`` (stage manifests) or ``mlflow`` (the rounds' parent runs).
    """
    from flywheel.ops.report import write_report
    from flywheel.runner import stage_list
    from flywheel.store import Store

    store = Store(cfg.run.root, cfg.run.storage_options)
    stages = stage_list(cfg)
    if source not in ("store", "mlflow"):
        raise FlywheelError(f"--source must be store or mlflow, got {source!r}")
    if not store.rounds():  # before MLflow: opening a sqlite URI would create an empty database
        raise FlywheelError(f"no rounds under {cfg.run.root}: nothing to compare")
    if source == "store":
        rows = rows_from_store(store, stages, rounds)
    elif source == "mlflow":
        import os

        from flywheel.tracking import tracking_uri

        uri = tracking_uri(cfg.tracking, store, os.path.expanduser(cfg.run.cache_dir), cfg.run.name)
        rows = rows_from_mlflow(uri, cfg.tracking.experiment or cfg.run.name, stages, rounds)
    if not rows:
        raise FlywheelError(f"no finished stages under {cfg.run.root}: nothing to compare")
    out_uri = out or store.uri("reports")
    if "://" not in out_uri:
        import os

        out_uri = os.path.abspath(out_uri)
    paths = write_report(store, out_uri, rows, stages, f"flywheel run {cfg.run.name}: rounds compared")
    return rows, paths
