"""What every stage shares: the round context, model resolution, skip-if-done, parts, lineage.

A stage is a function ``(ctx) -> manifest``: it reads its inputs' manifests from the store, writes its
outputs under names that carry its fingerprint, and publishes by writing ``_MANIFEST.json`` last. A stage
whose manifest already carries the same fingerprint is skipped, which is how a killed round resumes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flywheel import __version__
from flywheel.config import Config, builtin_or_path, expand, to_dict
from flywheel.errors import FlywheelError
from flywheel.readers import read_rows
from flywheel.sdg.formats import FORMATS, detect, to_prompt
from flywheel.store import Store, fingerprint

log = logging.getLogger("flywheel")


@dataclass
class Context:
    """One round's view of the world. ``engines`` outlives the round (pools are reused across stages)."""

    cfg: Config
    store: Store
    round: int
    engines: Any = None  # flywheel.engines.cache.EngineCache, created lazily
    tracker: Any = None  # flywheel.tracking.Tracker or None
    cache: dict = field(default_factory=dict)

    @property
    def cache_dir(self) -> str:
        return expand(self.cfg.run.cache_dir)

    def manifest(self, stage: str, round_idx: int | None = None) -> dict:
        r = self.round if round_idx is None else round_idx
        man = self.store.manifest(r, stage)
        if man is None:
            raise FlywheelError(f"round {r}: stage {stage!r} has not run yet (run `flywheel iterate --round {r}`)")
        return man


def run_once(
    ctx: Context,
    name: str,
    fp_parts: Iterable[Any],
    body: Callable[[str], tuple[dict, dict]],
    inputs: dict[str, str] | None = None,
) -> dict:
    """Skip if done, else run ``body(fp) -> (outputs, metrics)`` and publish the manifest.

    A failure is recorded next to the stage (``_FAILED.json``, shown by ``flywheel status``) and re-raised.
    """
    fp = fingerprint(name, __version__, *fp_parts)  # a new release of the code recomputes, never reuses
    if ctx.store.is_done(ctx.round, name, fp):
        log.info("round %d: %s already done (fingerprint %s), skipping", ctx.round, name, fp)
        man = ctx.store.manifest(ctx.round, name)
        assert man is not None
        man["skipped"] = True
        return man
    log.info("round %d: %s starting", ctx.round, name)
    started = time.time()
    try:
        outputs, metrics = body(fp)
    except BaseException as err:
        ctx.store.mark_failed(ctx.round, name, f"{type(err).__name__}: {err}"[:2000])
        raise
    man = ctx.store.commit(ctx.round, name, fp, outputs, inputs=inputs, metrics=metrics, started=started)
    log.info("round %d: %s done in %.1fs %s", ctx.round, name, man["seconds"], _brief(metrics))
    if ctx.tracker is not None:
        ctx.tracker.log_stage(ctx.round, name, man)
    return man


def _brief(metrics: dict) -> str:
    items = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))][:6]
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items)


def lineage(ctx: Context, stage: str, fp: str, **extra: Any) -> dict:
    return {"round": ctx.round, "stage": stage, "config_hash": fp, **extra}


def write_parts(
    ctx: Context, stage: str, fp: str, rows: Iterable[dict], part_size: int = 1000, fmt: str = "jsonl"
) -> dict:
    """Write rows in parts (``jsonl`` or ``parquet``) under ``{stage}/{fp}/``; returns the manifest's output record."""
    base = ctx.store.uri(f"round-{ctx.round:03d}", stage, fp)
    parts: list[dict] = []
    chunk: list[dict] = []
    total = 0

    def flush():
        nonlocal total
        uri = f"{base}/part-{len(parts):05d}.{fmt}"
        n, sha = (ctx.store.write_parquet if fmt == "parquet" else ctx.store.write_jsonl)(uri, chunk)
        parts.append({"uri": uri, "sha256": sha, "count": n})
        total += n
        chunk.clear()

    for row in rows:
        chunk.append(row)
        if len(chunk) >= part_size:
            flush()
    if chunk or not parts:
        flush()
    return {"parts": parts, "count": total}


def read_output(ctx: Context, man: dict, name: str) -> Iterator[dict]:
    """Rows of a manifest's output ``name`` (all parts, in order)."""
    out = man["outputs"].get(name)
    if out is None:
        raise FlywheelError(f"stage {man['stage']}: no output {name!r}")
    for part in out["parts"]:
        yield from ctx.store.read_part(part)  # checked against its sha256: a truncated part is never read


def read_prompt_file(spec: str | Mapping[str, Any]) -> list[dict]:
    """Prompt rows from a JSONL or Parquet file, local or any fsspec URI, in a public dataset's layout.

    Args:
        spec: a path/URI (``builtin:`` for a shipped file), or ``{path: ..., format: ...}`` with a format of
            :data:`flywheel.sdg.formats.FORMATS`; without one, each row's layout is detected from its keys.
            GSM8K and MATH rows carry their ground-truth answer into ``meta`` (kind ``math``).
    """
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"path", "format"}
        if unknown or not isinstance(spec.get("path"), str):
            raise FlywheelError(f"prompt file spec {dict(spec)!r}: needs 'path' (and optionally 'format')")
        fmt = spec.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise FlywheelError(f"prompt file {spec['path']}: unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
        path = builtin_or_path(spec["path"])
    else:
        path, fmt = builtin_or_path(spec), None
    rows = []
    seen: dict[str, int] = {}
    dropped = 0
    for i, row in enumerate(read_rows(path), 1):
        if not isinstance(row, dict):
            raise FlywheelError(f"{path}:{i}: a prompt row must be an object")
        layout = fmt or detect(row)
        if layout is None:
            raise FlywheelError(
                f"{path}:{i}: prompt row needs 'messages' or 'prompt' (or the keys of a layout: {', '.join(FORMATS)})"
            )
        try:
            msgs, extra = to_prompt(row, layout)
        except ValueError as err:
            raise FlywheelError(
                f"{path}:{i}: {err}" if layout == "messages" else f"{path}:{i}: {layout} row: {err}"
            ) from None
        rid = row.get("id") or row.get("conversation_id")
        pid = rid or fingerprint(msgs)
        if str(pid) in seen:  # responses are paired by prompt id: two prompts under one id would mix answers
            if not rid:  # the same prompt text twice: one copy is enough
                dropped += 1
                continue
            raise FlywheelError(f"{path}:{i}: duplicate prompt id {pid!r} (first on line {seen[str(pid)]})")
        seen[str(pid)] = i
        meta: dict[str, Any] = row["meta"] if isinstance(row.get("meta"), dict) else {}
        rows.append(
            {
                "id": pid,
                "messages": msgs,
                "kind": row.get("kind", "math" if "answer" in extra else "file"),
                "split": row.get("split", "train"),
                "meta": {**meta, **extra},
            }
        )
    if dropped:
        log.warning("%s: %d repeated prompts dropped (same messages, no id)", path, dropped)
    return rows


def section(obj: Any) -> dict:
    return to_dict(obj)


def local_path(ctx: Context, uri: str) -> str:
    return ctx.store.local_dir(uri, os.path.join(ctx.cache_dir, "store"))


def map_parts(
    ctx: Context,
    stage: str,
    fp: str,
    pool: Any,
    method: str,
    batches: list[Any],
    make_args: Callable[[Any], tuple],
    make_rows: Callable[[Any, dict], list[dict]],
    desc: str,
) -> tuple[dict, dict]:
    """Send ``batches`` through an engine pool, writing each finished batch as its own part at once.

    Parts already written by an earlier (killed) attempt with the same fingerprint are kept, not recomputed.
    A part is named by its position and a hash of what its batch asks (``make_args``), so an attempt that split
    the work otherwise (another ``engine.batch_size`` or ``num_actors``) reuses no part of the old split: every
    row is answered, none twice and none lost. Returns (output record, metrics with generated tokens and tokens/s).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    base = ctx.store.uri(f"round-{ctx.round:03d}", stage, fp)
    uris = [f"{base}/part-{i:05d}-{fingerprint(b, make_args(b))[:12]}.jsonl" for i, b in enumerate(batches)]
    todo = [i for i, uri in enumerate(uris) if not ctx.store.exists(uri)]
    if len(todo) < len(batches):
        log.info("%s: reusing %d finished parts", stage, len(batches) - len(todo))
    stats = {"tokens": 0, "engine_seconds": 0.0}
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(desc, total=len(batches), completed=len(batches) - len(todo), rate="")

        def on_result(i: int, out: dict) -> None:
            ctx.store.write_jsonl(uris[i], make_rows(batches[i], out))
            stats["tokens"] += out.get("tokens", 0)
            stats["engine_seconds"] += out.get("seconds", 0.0)
            rate = stats["tokens"] / max(time.perf_counter() - t0, 1e-6)
            bar.update(task, advance=1, rate=f"{rate:,.0f} tok/s" if stats["tokens"] else "")

        if todo:
            pool.map(method, [(i, make_args(batches[i])) for i in todo], on_result)
    wall = time.perf_counter() - t0
    parts, total = [], 0
    for uri in uris:
        rows = list(ctx.store.read_jsonl(uri))
        import hashlib

        data = ctx.store.fs.cat_file(ctx.store.path(uri))
        parts.append({"uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "count": len(rows)})
        total += len(rows)
    metrics = {
        "rows": total,
        "tokens": stats["tokens"],
        "wall_seconds": round(wall, 3),
        "tokens_per_s": round(stats["tokens"] / wall, 2) if wall > 0 and stats["tokens"] else 0.0,
    }
    return {"parts": parts, "count": total}, metrics


def batched(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]
