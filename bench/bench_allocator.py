"""Training step tokens/s under glibc malloc vs the jemalloc Ray ships (``train.allocator``), in one run.

The allocator is chosen when a process starts (``LD_PRELOAD``), so each arm is a fresh process of
``bench/bench_train.py`` (its ``flywheel`` arm by default: ``train_stage`` on the DeepSpeed engine, autocast as
``train.autocast: auto`` decides) with the environment :func:`flywheel.hardware.allocator_env` gives for
``system`` and for ``jemalloc`` -- what a Ray Train worker gets from ``train.allocator``. The arms alternate,
``--repeats`` times each; the best rate of each is compared.

    flock /tmp/flywheel-heavy.lock .venv/bin/python bench/bench_allocator.py             # ~6 min, 2 cores
    .venv/bin/python bench/bench_allocator.py --arms plain_bf16 -- --steps 4              # the plain loop instead
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def run_arm(allocator: str, arms: str, extra: list[str], malloc_conf: str = "") -> dict:
    from flywheel.hardware import allocator_env

    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")}
    env = {**base, **allocator_env(allocator, environ=base)}
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
    p.add_argument("extra", nargs="*", help="passed to bench_train.py after --")
    args = p.parse_args(argv)
    extra = args.extra or ["--pairs", "48", "--steps", "6", "--warmup", "1", "--batch", "8"]
    rates: dict[str, list[dict]] = {"system": [], "jemalloc": []}
    for _ in range(args.repeats):
        for allocator in rates:
            res = run_arm(allocator, args.arms, extra, args.malloc_conf)
            rates[allocator].append(res["tok_s"])
            print(f"{allocator}: {res['tok_s']} peak RSS {res.get('peak_rss_mb')} MB", flush=True)
    best = {a: {arm: max(r[arm] for r in rs) for arm in rs[0]} for a, rs in rates.items()}
    out = {
        "tok_s": best,
        "jemalloc_vs_system": {arm: round(best["jemalloc"][arm] / best["system"][arm], 3) for arm in best["system"]},
        "bench_train_args": extra,
        "malloc_conf": args.malloc_conf,
        "repeats": args.repeats,
    }
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
