"""Round time against the number of answered prompts: is a round linear in its data?

For each N of ``--prompts`` (default 100, 200, 400) one round of ``--config`` (default ``configs/local.yaml``)
runs with ``generation.response_prompts=N`` in its own run root under ``--out``, as a fresh
``flywheel iterate --rounds 1`` process (each root trains its own reward stage first: the same seeded work, not
part of the round's time). From each run: the round's wall time (the round summary line of its console) and
every stage's seconds (its manifest; the training jobs summed as ``training``). Then the least-squares line ``time = a + b * N`` over the rounds, each round's deviation from
it, and a plot (round time and the stages that scale, against N) written next to the results.

    flock /tmp/flywheel-heavy.lock .venv/bin/python bench/bench_scaling.py --out /tmp/scaling   # ~2.5 h, 2 cores
    .venv/bin/python bench/bench_scaling.py --config configs/tiny.yaml --prompts 4,8,16 --out /tmp/s   # minutes

``--set KEY=VALUE`` (repeatable) overrides the config of every round: ``--set models.reward=PATH`` judges with one
already trained reward model instead of training it again in every root (the stage then only evaluates it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence

ROUND = re.compile(r"round 1: (\d+)s wall, overhead (\d+)%")
TRAINING_JOBS = re.compile(r"^(sft_code|sft|dpo|rpo_\d+)$")


def parse_console(text: str) -> dict:
    """The round's wall seconds and overhead share from ``flywheel iterate``'s round summary line."""
    m = ROUND.search(text)
    if m is None:
        raise ValueError("no round summary line in the console output (did the round finish?)")
    return {"round_seconds": float(m.group(1)), "overhead_pct": float(m.group(2))}


def stage_seconds(round_dir: str) -> dict[str, float]:
    """Each stage's own seconds from its manifest under ``round_dir``; the training jobs summed as ``training``."""
    from flywheel.rounds import compute_seconds

    out: dict[str, float] = {}
    for name in sorted(os.listdir(round_dir)):
        path = os.path.join(round_dir, name, "_MANIFEST.json")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            seconds = compute_seconds(json.load(f))
        key = "training" if TRAINING_JOBS.match(name) else name
        out[key] = round(out.get(key, 0.0) + seconds, 1)
    return out


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> dict:
    """Least-squares ``y = a + b * x`` and each point's relative deviation ``(y - fit) / fit``."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        raise ValueError("a line needs at least two distinct x values")
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    dev = [(y - (a + b * x)) / (a + b * x) for x, y in zip(xs, ys)]
    return {"intercept": a, "slope": b, "deviations": dev, "max_abs_deviation": max(abs(d) for d in dev)}


def run_round(config: str, n: int, root: str, log_path: str, overrides: Sequence[str] = ()) -> dict:
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "flywheel"),
        "iterate",
        "--rounds",
        "1",
        "--config",
        config,
        f"generation.response_prompts={n}",
        f"run.root={root}",
        *overrides,
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    with open(log_path, "w") as f:
        f.write(out.stdout + out.stderr)
    if out.returncode:
        raise SystemExit(f"N={n}: flywheel iterate failed (exit {out.returncode}); console in {log_path}")
    return {
        "prompts": n,
        "process_seconds": round(wall, 1),
        **parse_console(out.stdout + out.stderr),
        "stages": stage_seconds(os.path.join(root, "round-001")),
    }


def plot(results: list[dict], fit: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["prompts"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [r["round_seconds"] / 60 for r in results], "o-", label="round")
    for stage in ("prompts", "responses", "judge", "training", "evaluate"):
        ys = [r["stages"].get(stage) for r in results]
        if all(y is not None for y in ys):
            ax.plot(xs, [y / 60 for y in ys], ".--", label=stage)
    lo, hi = min(xs), max(xs)
    ax.plot([lo, hi], [(fit["intercept"] + fit["slope"] * x) / 60 for x in (lo, hi)], ":", color="gray", label="fit")
    ax.set_xlabel("answered prompts (generation.response_prompts)")
    ax.set_ylabel("minutes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/local.yaml")
    p.add_argument("--prompts", default="100,200,400", help="answered prompts per round, comma-separated")
    p.add_argument("--out", required=True, help="directory for the run roots, consoles, results.json and plot")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every round (repeatable), e.g. models.reward=PATH to reuse one trained judge",
    )
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.prompts.split(",")]
    os.makedirs(args.out, exist_ok=True)
    results = []
    for n in sizes:
        root, log = os.path.join(args.out, f"root-{n}"), os.path.join(args.out, f"console-{n}.log")
        r = run_round(args.config, n, root, log, args.set)
        print(json.dumps(r), flush=True)
        results.append(r)
    fit = linear_fit([r["prompts"] for r in results], [r["round_seconds"] for r in results])
    report = {"config": args.config, "overrides": args.set, "results": results, "fit": fit}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    plot(results, fit, os.path.join(args.out, "scaling.png"))
    print(
        f"round seconds = {fit['intercept']:.0f} + {fit['slope']:.2f} x prompts; deviations "
        + ", ".join(f"N={n}: {d:+.1%}" for n, d in zip(sizes, fit["deviations"]))
        + f"; max {fit['max_abs_deviation']:.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
