"""One AdamW step over SmolLM2-135M's parameters: torch's multi-tensor (foreach) kernel vs its fused one.

flywheel's :func:`flywheel.train.engine.build_optimizer` picks the fused kernel wherever every parameter is a
floating tensor on a CPU or CUDA device. Same parameters and gradients for both arms, alternating, best of
``--repeats`` rounds of ``--steps`` steps each; prints one RESULT line with the ratio.

    flock /tmp/flywheel-heavy.lock .venv/bin/python bench/bench_optimizer.py     # ~1 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/flywheel/models/smollm2-135m-instruct"))
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    params = list(AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    arms = {
        "foreach": torch.optim.AdamW(params, lr=1e-9, foreach=True),
        "fused": torch.optim.AdamW(params, lr=1e-9, fused=True),
    }
    seconds: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(args.repeats):
        for name, opt in arms.items():
            opt.step()  # state allocated, caches warm
            t = time.perf_counter()
            for _ in range(args.steps):
                opt.step()
            seconds[name].append((time.perf_counter() - t) / args.steps)
    best = {k: min(v) for k, v in seconds.items()}
    print(
        "RESULT "
        + json.dumps(
            {
                "threads": torch.get_num_threads(),
                "params": sum(p.numel() for p in params),
                "step_seconds": {k: round(v, 4) for k, v in best.items()},
                "all_seconds": {k: [round(x, 4) for x in v] for k, v in seconds.items()},
                "fused_speedup": round(best["foreach"] / best["fused"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
