"""The round comparison report: a PNG chart and a self-contained HTML page (table + the same chart).

Four panels over rounds: held-out rewards of candidate vs. generator with the win rate, the held-out suites
(IF and math accuracy, round 0 = the initial model), dataset sizes, and seconds per stage (stacked). Written through the
store, so the report can live beside an s3:// run.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

from flywheel.ops.rows import EVAL, REWARD, SIZES, SUITES, THROUGHPUT, columns, fmt


def chart_png(rows: list[dict], stages: list[str], title: str) -> bytes:
    """Render the four-panel chart (rewards, suites, dataset sizes, seconds); returns PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # no display here or on clusters
    import matplotlib.pyplot as plt

    xs = [r["round"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    ax = axes[0][0]
    for key, label in (("cand. reward", "candidate"), ("gen. reward", "generator")):
        ax.plot(xs, [_num(r[key]) for r in rows], marker="o", label=label)
    ax.set_title("held-out mean reward")
    twin = ax.twinx()
    twin.plot(xs, [_num(r["win rate"]) for r in rows], "s--", color="gray", label="win rate")
    twin.set_ylim(0, 1)
    twin.set_ylabel("win rate (candidate vs generator)")
    ax.legend(loc="upper left")
    twin.legend(loc="upper right")
    ax = axes[0][1]
    for key in ("IF prompt strict", "IF instr. loose", "math"):
        ax.plot(xs, [_num(r.get(key)) for r in rows], marker="o", label=key)
    ax.set_ylim(0, 1)
    ax.set_title("held-out suites (round 0 = initial model)")
    ax.legend(fontsize=8)
    ax = axes[1][0]
    sizes = ["prompts", "responses", "sft general", "pairs"]
    width = 0.8 / len(sizes)
    for i, key in enumerate(sizes):
        ax.bar([x - 0.4 + width * (i + 0.5) for x in xs], [_num(r[key]) for r in rows], width, label=key)
    ax.set_title("dataset sizes (rows)")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    bottom = [0.0] * len(rows)
    for s in stages:
        vals = [r["stage_seconds"].get(s, 0.0) for r in rows]
        if any(vals):
            ax.bar(xs, vals, bottom=bottom, label=s)
            bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_title("seconds per stage")
    ax.legend(fontsize=7, ncol=2)
    for a in axes.flat:
        a.set_xlabel("round")
        a.set_xticks(xs)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _num(v: Any, default: float = 0.0) -> float:
    return default if v is None else float(v)


def html_page(rows: list[dict], stages: list[str], title: str, png: bytes) -> str:
    """A single HTML file: the comparison table, seconds per stage, and the chart inlined as base64."""
    heads = ["round", "generator", "promoted", *columns()]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(h)))}</td>" for h in heads) + "</tr>" for r in rows)
    used = [s for s in stages if any(s in r["stage_seconds"] for r in rows)]
    times = "".join(
        "<tr><td>"
        + str(r["round"])
        + "</td>"
        + "".join(f"<td>{fmt(r['stage_seconds'].get(s))}</td>" for s in used)
        + "</tr>"
        for r in rows
    )
    img = base64.b64encode(png).decode()
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in heads)}</tr>{body}</table>"
        f"<h2>seconds per stage</h2><table><tr><th>round</th>{''.join(f'<th>{s}</th>' for s in used)}</tr>"
        f"{times}</table><img alt='round comparison chart' src='data:image/png;base64,{img}'></body></html>"
    )


def write_report(store: Any, out_uri: str, rows: list[dict], stages: list[str], title: str) -> dict[str, str]:
    """Write ``compare.png``, ``compare.html`` and ``compare.json`` under ``out_uri``. Returns their URIs."""
    png = chart_png(rows, stages, title)
    paths = {"png": f"{out_uri}/compare.png", "html": f"{out_uri}/compare.html", "json": f"{out_uri}/compare.json"}
    store.write_bytes(paths["png"], png)
    store.write_bytes(paths["html"], html_page(rows, stages, title, png).encode())
    store.write_bytes(paths["json"], json.dumps(rows, indent=2, default=str).encode())
    return paths


def table(rows: list[dict], stages: list[str], title: str):
    """A rich Table with a column per round: identity, metric rows, then seconds per stage."""
    from rich.table import Table

    t = Table(title=title)
    t.add_column("")
    for r in rows:
        t.add_column(f"round {r['round']}", justify="right")
    t.add_row("[bold]promoted[/]", *[fmt(r["promoted"]) for r in rows])
    groups = (("eval", EVAL), ("suites", SUITES), ("judge", REWARD), ("rows", SIZES), ("speed", THROUGHPUT))
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
