"""Training step tokens/s under glibc malloc vs the jemalloc Ray ships (``train.allocator``), in one run.

The allocator is chosen when a process starts (``LD_PRELOAD``), so each arm is a fresh process of
``bench/bench_train.py`` (its ``flywheel`` arm by default: ``train_stage`` on the DeepSpeed engine, autocast as
``train.autocast: auto`` decides) with the environment :func:`flywheel.hardware.allocator_env` gives for
``system`` and for ``jemalloc`` -- what a Ray Train worker gets from ``train.allocator``. The arms alternate,
``--repeats`` times each; the best rate of each is compared.

    flock /tmp/flywheel-heavy.lock .venv/bin/python bench/bench_allocator.py             # ~6 min, 2 cores
    .venv/bin/python bench/bench_allocator.py --arms plain_bf16 -- --steps 4              # the plain loop instead

``--setting NAME=ALLOCATOR[,VAR=VALUE...]`` (repeatable) times other settings instead of the two defaults, e.g.
glibc with transparent huge pages for its large blocks, or jemalloc with other options:

    .venv/bin/python bench/bench_allocator.py --setting glibc=system \
        --setting glibc_thp=system,GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
        --setting jemalloc=jemalloc --setting jemalloc_thp=jemalloc,MALLOC_CONF=thp:always
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def parse_setting(spec: str) -> tuple[str, str, dict[str, str]]:
    """``NAME=ALLOCATOR[,VAR=VALUE...]`` -> (name, allocator, extra environment)."""
    name, _, rest = spec.partition("=")
    allocator, *pairs = rest.split(",")
    env = dict(p.split("=", 1) for p in pairs)
    if not name or allocator not in ("system", "jemalloc"):
        raise SystemExit(f"--setting {spec!r}: expected NAME=system|jemalloc[,VAR=VALUE...]")
    return name, allocator, env


def run_arm(allocator: str, arms: str, extra: list[str], malloc_conf: str = "", env_extra: dict | None = None) -> dict:
    from flywheel.hardware import allocator_env

    drop = ("LD_PRELOAD", "MALLOC_CONF", "GLIBC_TUNABLES")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    env = {**base, **allocator_env(allocator, environ=base), **(env_extra or {})}
    if malloc_conf and allocator == "jemalloc":
        env["MALLOC_CONF"] = malloc_conf
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_train.py")
    cmd = [sys.executable, script, "--arms", arms, "--repeats", "1", *extra]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if out.returncode or line is None:
        raise SystemExit(f"{allocator}: bench_train failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(line[len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arms", default="flywheel", help="bench_train arms timed under each allocator")
    p.add_argument("--repeats", type=int, default=2, help="alternating runs per allocator")
    p.add_argument("--malloc-conf", default="", help="jemalloc's MALLOC_CONF for its arm (default: its own defaults)")
    p.add_argument("--setting", action="append", default=[], help="NAME=ALLOCATOR[,VAR=VALUE...] (repeatable)")
    p.add_argument("extra", nargs="*", help="passed to bench_train.py after --")
    args = p.parse_args(argv)
    extra = args.extra or ["--pairs", "48", "--steps", "6", "--warmup", "1", "--batch", "8"]
    settings = [parse_setting(s) for s in args.setting] or [("system", "system", {}), ("jemalloc", "jemalloc", {})]
    rates: dict[str, list[dict]] = {name: [] for name, _, _ in settings}
    for _ in range(args.repeats):
        for name, allocator, env in settings:
            res = run_arm(allocator, args.arms, extra, args.malloc_conf, env)
            rates[name].append(res["tok_s"])
            print(f"{name}: {res['tok_s']} peak RSS {res.get('peak_rss_mb')} MB", flush=True)
    best = {a: {arm: max(r[arm] for r in rs) for arm in rs[0]} for a, rs in rates.items()}
    first = settings[0][0]
    out = {
        "tok_s": best,
        f"vs_{first}": {a: {arm: round(v / best[first][arm], 3) for arm, v in b.items()} for a, b in best.items()},
        "bench_train_args": extra,
        "malloc_conf": args.malloc_conf,
        "repeats": args.repeats,
    }
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
