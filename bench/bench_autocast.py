"""Training step throughput with bf16 autocast vs fp32, on SmolLM2-135M-Instruct, through flywheel's own loop.

``train.autocast: auto`` turns bf16 autocast on where the CPU computes bf16 natively (AVX512-BF16, AMX) and on
GPUs. This measures what that buys on this machine: the same SFT examples (the shipped HelpSteer2-format set's
prompt + response rows), batch, threads and steps, run alternately fp32 / autocast, best of ``--repeats``.
Tokens are the non-padding tokens per step; rates are taken over the steps after ``--warmup``.

    flock /tmp/flywheel-heavy.lock .venv/bin/python bench/bench_autocast.py     # ~5 min, 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="~/.cache/flywheel/models/smollm2-135m-instruct")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from flywheel.config import builtin_or_path
    from flywheel.hardware import cpu_has_bf16
    from flywheel.readers import read_jsonl
    from flywheel.train.config import StageConfig
    from flywheel.train.data import sft_examples
    from flywheel.train.engine import TorchEngine, build_optimizer
    from flywheel.train.loop import train_stage

    torch.set_num_threads(args.threads)
    model_dir = os.path.expanduser(args.model)
    if not os.path.isdir(model_dir):
        raise SystemExit(f"model not found: {model_dir} (run `flywheel models pull smollm2`)")
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}]}
        for r in read_jsonl(builtin_or_path("builtin:helpsteer_train.jsonl"))
    ]
    examples, _ = sft_examples(tok, rows, args.max_len, "right")
    stage = StageConfig(lr=1e-5, batch_size=args.batch, max_steps=args.warmup + args.steps, lr_schedule="constant")
    rates: dict[str, list[float]] = {"fp32": [], "bf16_autocast": []}
    for _ in range(args.repeats):
        for name, autocast in (("fp32", False), ("bf16_autocast", True)):
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
            engine = TorchEngine(model, build_optimizer(model, stage.lr, stage.weight_decay))
            pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
            t0 = time.perf_counter()
            hist = train_stage(engine, "sft", examples, stage, pad, autocast=autocast)["history"][args.warmup :]
            rate = sum(h["tokens"] for h in hist) / sum(h["seconds"] for h in hist)
            rates[name].append(rate)
            print(f"{name}: {rate:.1f} tok/s ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = {k: max(v) for k, v in rates.items()}
    out["ratio"] = out["bf16_autocast"] / out["fp32"]
    out.update(threads=args.threads, batch=args.batch, max_len=args.max_len, steps=args.steps, cpu_bf16=cpu_has_bf16())
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
