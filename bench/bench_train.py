"""DPO training step: flywheel's real step path vs the plain torch loop a user would write, fp32 and bf16.

Three arms on the same model, preference pairs, batch size, max_len, device and threads, in one run:

* ``plain_fp32``: a single-process loop written from scratch: random batches padded to their longest row,
  ``[chosen; rejected]`` in one forward, DPO loss against stored reference log-probs, torch AdamW;
* ``plain_bf16``: the same loop with the forward under bf16 autocast (fp32 weights and optimizer state);
* ``flywheel``: :func:`flywheel.train.loop.train_stage` on a DeepSpeed engine built by
  :class:`flywheel.engines.ray_train.DeepSpeedRuntime` (what each Ray Train worker runs; world of one here),
  autocast as ``train.autocast: auto`` decides on this machine (``--engine torch``: the in-process engine).
  On a GPU a fourth arm, ``flywheel_bf16_weights``, runs DeepSpeed's ``bf16`` (``train.bf16: true``).
  On request (``--arms``), that arm on a CPU too.

Pairs: the shipped HelpSteer2-format set, per prompt its most and least helpful response (504 real pairs).
Tokens: the non-padding tokens of the ``[chosen; rejected]`` rows; rates over the steps after ``--warmup``,
best of ``--repeats`` alternating runs. MFU: ``6 * parameters * tokens/s`` over a matmul roof measured here
(square products of ``--roof-size``, fp32 and bf16), each arm against the roof of the precision it computes in.

    flock /tmp/flywheel-heavy.lock .venv/bin/python bench/bench_train.py      # ~10 min, 2 cores
    python bench/bench_train.py --device cuda --random-init --batch 32 --steps 40   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import time


def preference_rows() -> list[dict]:
    from importlib import resources

    by_prompt: dict[str, list[dict]] = {}
    text = (resources.files("flywheel") / "data" / "helpsteer_train.jsonl").read_text()
    for r in map(json.loads, text.splitlines()):
        by_prompt.setdefault(r["prompt"], []).append(r)
    rows = []
    for prompt, rs in by_prompt.items():
        rs = sorted(rs, key=lambda r: r["helpfulness"])
        if rs[-1]["helpfulness"] > rs[0]["helpfulness"]:
            rows.append(
                {
                    "prompt": [{"role": "user", "content": prompt}],
                    "chosen": [{"role": "assistant", "content": rs[-1]["response"]}],
                    "rejected": [{"role": "assistant", "content": rs[0]["response"]}],
                }
            )
    return rows


def matmul_roof(device, dtype, n: int, reps: int = 5) -> float:
    """FLOP/s of an ``n x n x n`` product on this device, best of ``reps`` after a warm-up."""
    import torch

    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for i in range(reps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        if i:
            best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def load_model(args, device):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if args.random_init:  # the same shapes without the weights (they may not travel to the machine)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.model), dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    return model.to(device)


def plain_loop(args, device, pairs, ref, pad_id: int, autocast: bool) -> float:
    """The naive loop: random batches, padded to their longest row, AdamW, optional bf16 autocast."""
    import torch
    import torch.nn.functional as F

    model = load_model(args, device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    rng = random.Random(0)
    tokens, seconds = 0, 0.0
    for step in range(args.warmup + args.steps):
        idx = rng.sample(range(len(pairs)), args.batch)
        seqs = [pairs[i].chosen for i in idx] + [pairs[i].rejected for i in idx]
        width = max(len(s.input_ids) for s in seqs)
        ids = torch.tensor([s.input_ids + [pad_id] * (width - len(s.input_ids)) for s in seqs], device=device)
        labels = torch.tensor([s.labels + [-100] * (width - len(s.labels)) for s in seqs], device=device)
        mask = (torch.arange(width)[None, :] < torch.tensor([len(s.input_ids) for s in seqs])[:, None]).to(device)
        r = ref[idx].to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=ids, attention_mask=mask.long()).logits
        logits, tgt = logits[:, :-1].float(), labels[:, 1:]
        keep = tgt != -100
        logp = torch.gather(F.log_softmax(logits, -1), 2, tgt.clamp(min=0)[..., None])[..., 0]
        seq = (logp * keep).sum(1)
        n = len(idx)
        margin = (seq[:n] - r[:, 0]) - (seq[n:] - r[:, 1])
        loss = -F.logsigmoid(0.1 * margin).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            seconds += time.perf_counter() - t
            tokens += int(mask.sum())
    return tokens / seconds


def flywheel_loop(args, device, pairs, ref, pad_id: int, bf16_weights: bool) -> tuple[float, bool]:
    """flywheel's step path: train_stage on the engine a Ray Train worker builds; (tokens/s, autocast used)."""
    from flywheel.hardware import use_autocast
    from flywheel.train.config import StageConfig
    from flywheel.train.job import LocalRuntime
    from flywheel.train.loop import train_stage

    stage = StageConfig(
        lr=1e-6,
        batch_size=args.batch,
        max_steps=args.warmup + args.steps,
        beta=0.1,
        lr_schedule="constant",
        max_grad_norm=args.max_grad_norm,
    )
    autocast = use_autocast("auto", on_gpu=device.type == "cuda", bf16_weights=bf16_weights)
    if args.engine == "deepspeed":
        from flywheel.engines.ray_train import DeepSpeedRuntime

        rt = DeepSpeedRuntime(0, bf16_weights, 0, 1, device)
    else:
        rt = LocalRuntime()
    model = load_model(args, device)
    engine = rt.engine(model, stage, stage.max_steps)
    try:
        hist = train_stage(engine, "dpo", pairs, stage, pad_id, ref_logps=ref, autocast=autocast)["history"]
    finally:
        rt.release(engine)
    timed = hist[args.warmup :]
    return sum(h["tokens"] for h in timed) / sum(h["seconds"] for h in timed), autocast


def init_dist(device) -> None:
    """A process group of one, as Ray Train would have made (DeepSpeed wraps the existing group)."""
    import torch

    if not torch.distributed.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=0, world_size=1)
        from flywheel.engines.ray_train import init_deepspeed

        init_deepspeed(backend)  # as each Ray Train worker does


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="~/.cache/flywheel/models/smollm2-135m-instruct")
    p.add_argument("--random-init", action="store_true", help="the model's config with random weights")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--engine", default="deepspeed", choices=["deepspeed", "torch"])
    p.add_argument("--pairs", type=int, default=128, help="pairs used (of 504): the reference pass covers them")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="flywheel's clipping (default as shipped; 0: off)")
    p.add_argument("--roof-size", type=int, default=0, help="matmul side for the roof (default: 2048 CPU, 8192 GPU)")
    p.add_argument("--arms", default="", help="comma-separated arms to run (default: all)")
    args = p.parse_args(argv)
    args.model = os.path.expanduser(args.model)
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        raise SystemExit(f"model not found: {args.model} (run `flywheel models pull smollm2`)")

    import torch
    from transformers import AutoTokenizer

    from flywheel.hardware import cpu_has_bf16
    from flywheel.train.data import pair_examples
    from flywheel.train.reference import compute_ref_logps

    torch.set_num_threads(args.threads)
    on_gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda:0" if on_gpu else "cpu")
    if args.engine == "deepspeed":
        init_dist(device)
    tok = AutoTokenizer.from_pretrained(args.model)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    pairs = pair_examples(tok, preference_rows()[: args.pairs], args.max_len, "left_prompt")
    ref = compute_ref_logps(load_model(args, device), pairs, args.batch, pad)
    n_params = sum(p.numel() for p in load_model(args, torch.device("cpu")).parameters())
    side = args.roof_size or (8192 if on_gpu else 2048)
    roof = {"fp32": matmul_roof(device, torch.float32, side), "bf16": matmul_roof(device, torch.bfloat16, side)}
    print(f"roof ({side}^3 matmul): fp32 {roof['fp32'] / 1e12:.3f} TFLOP/s, bf16 {roof['bf16'] / 1e12:.3f}", flush=True)

    known = ["plain_fp32", "plain_bf16", "flywheel", "flywheel_bf16_weights"]
    default = ["plain_fp32", "plain_bf16", "flywheel"] + (["flywheel_bf16_weights"] if on_gpu else [])
    wanted = args.arms.split(",") if args.arms else default
    if set(wanted) - set(known):
        raise SystemExit(f"unknown arms {sorted(set(wanted) - set(known))}; known: {known}")
    arms: dict[str, list[float]] = {k: [] for k in known if k in wanted}
    precision_of = {"plain_fp32": "fp32", "plain_bf16": "bf16", "flywheel_bf16_weights": "bf16"}
    for _ in range(args.repeats):
        for name in arms:
            if name.startswith("plain"):
                rate = plain_loop(args, device, pairs, ref, pad, autocast=name == "plain_bf16")
            else:
                bf16_weights = name == "flywheel_bf16_weights"
                rate, autocast = flywheel_loop(args, device, pairs, ref, pad, bf16_weights)
                if not bf16_weights:
                    precision_of[name] = "bf16" if autocast else "fp32"
            arms[name].append(rate)
            print(f"{name}: {rate:.1f} tok/s", flush=True)
    best = {k: max(v) for k, v in arms.items()}
    mfu = {k: 6 * n_params * v / roof[precision_of[k]] for k, v in best.items()}
    out = {
        "tok_s": {k: round(v, 1) for k, v in best.items()},
        "mfu": {k: round(v, 4) for k, v in mfu.items()},
        "precision": {k: precision_of[k] for k in best},
        **{
            f"{arm}_vs_{base}": round(best[arm] / best[base], 3)
            for arm in best
            if arm.startswith("flywheel")
            for base in ("plain_fp32", "plain_bf16", "flywheel")
            if base in best and base != arm
        },
        "roof_tflops": {k: round(v / 1e12, 3) for k, v in roof.items()},
        "device": torch.cuda.get_device_name(0) if on_gpu else f"cpu x{args.threads}",
        "cpu_bf16": cpu_has_bf16(),
        "engine": args.engine,
        "max_grad_norm": args.max_grad_norm,
        "params": n_params,
        "pairs": len(pairs),
        "batch": args.batch,
        "steps": args.steps,
        "torch": torch.__version__,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,  # all arms of this process
    }
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
