"""The held-out suites on one model: what ``evaluate`` reports for the initial model (round 0) of a profile.

Runs the real path of the ``evaluate`` stage (vLLM engines in Ray actors, greedy answers, the IFEval-style and
math scorers, the run's reward model) on the profile's initial model, or on ``--model``, and prints each
suite's metrics with a 95% bootstrap interval of the mean (per-prompt scores resampled), the number of prompts
and the seconds it took. Results are stored like the stage's, so a later ``flywheel iterate`` on the same
run root reuses them.

    .venv/bin/python bench/suites_baseline.py --config configs/demo.yaml models.reward=untrained   # ~10 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time


def mean_ci(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and the 2.5/97.5 percentiles of bootstrap means."""
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return sum(values) / n, means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--model", default="", help="a HF model directory (default: the profile's initial model)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)

    from flywheel.rounds import close_all, open_run, run_stage
    from flywheel.stages.evaluate import model_results, suite_prompts, summarize
    from flywheel.stages.roles import initial_model, reward_model

    rt = open_run(args.config, args.overrides, track=False)
    try:
        run_stage(rt, 0, "reward")
        ctx = rt.context(1)
        model = {"uri": args.model, "id": f"model:{args.model}"} if args.model else initial_model(ctx)
        suites = suite_prompts(ctx)
        t0 = time.perf_counter()
        uri, results = model_results(ctx, model, reward_model(ctx), suites)
        seconds = time.perf_counter() - t0
    finally:
        close_all()
    per_prompt = {
        "if_prompt_strict": [float(r["prompt_strict"]) for r in results["if"]],
        "if_prompt_loose": [float(r["prompt_loose"]) for r in results["if"]],
        "math_accuracy": [float(r["correct"]) for r in results["math"]],
    }
    out = {
        "model": model["id"],
        "results": uri,
        "seconds": round(seconds, 1),
        "summary": summarize(results),
        "prompts": {k: len(v) for k, v in suites.items()},
        "ci95": {k: [round(x, 4) for x in mean_ci(v)] for k, v in per_prompt.items()},
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
