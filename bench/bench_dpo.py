"""DPO step throughput: flywheel's loop vs TRL's DPOTrainer on the same tiny model, data, threads and batch.

Both sides train from stored reference log-probs (TRL: ``precompute_ref_log_probs=True``; ours: the one-off
reference pass of :mod:`flywheel.train.reference`), so the comparison is of the training step itself. Tokens
are the non-padding tokens of the ``[chosen; rejected]`` rows each side feeds its model; rates are taken
over the steps after ``--warmup``.

    OMP_NUM_THREADS=1 python bench/bench_dpo.py            # 4-15 min on one core, by CPU
    OMP_NUM_THREADS=1 python bench/bench_dpo.py --steps 10 --pairs 32   # quick look
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "river",
    "stone",
    "light",
    "cloud",
    "paper",
    "green",
    "quick",
    "slow",
    "north",
    "south",
    "table",
    "chair",
]


def make_rows(n: int, seed: int) -> list[dict]:
    """Preference rows with prompts of 8-40 words and answers of 5-60 words."""
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    return [
        {
            "prompt": [{"role": "user", "content": text(8, 40)}],
            "chosen": [{"role": "assistant", "content": text(5, 60)}],
            "rejected": [{"role": "assistant", "content": text(5, 60)}],
            "reward_chosen": 2.0,
            "reward_rejected": 1.0,
        }
        for _ in range(n)
    ]


def bench_ours(model_dir: str, rows: list[dict], args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from flywheel.train import data, reference
    from flywheel.train.config import StageConfig
    from flywheel.train.job import LocalRuntime
    from flywheel.train.loop import train_stage

    tok = AutoTokenizer.from_pretrained(model_dir)
    pairs = data.pair_examples(tok, rows, args.max_len, "left_prompt")
    t = time.perf_counter()
    ref = reference.compute_ref_logps(AutoModelForCausalLM.from_pretrained(model_dir), pairs, 8, tok.pad_token_id)
    ref_s = time.perf_counter() - t
    stage = StageConfig(lr=1e-6, batch_size=args.batch, max_steps=args.steps, beta=0.1, lr_schedule="constant")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    engine = LocalRuntime().engine(model, stage, args.steps)
    m = train_stage(engine, "dpo", pairs, stage, tok.pad_token_id, ref_logps=ref)
    timed = m["history"][args.warmup :]
    tok_s = sum(r["tokens"] for r in timed) / sum(r["seconds"] for r in timed)
    return {"tok_s": tok_s, "ref_pass_s": ref_s}


def bench_trl(model_dir: str, rows: list[dict], args, out_dir: str) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, targs, state, control, **kw):
            self.marks.append((time.perf_counter(), trainer._total_train_tokens))

    tok = AutoTokenizer.from_pretrained(model_dir)
    cfg = DPOConfig(
        output_dir=out_dir,
        beta=0.1,
        learning_rate=1e-6,
        lr_scheduler_type="constant",
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        max_length=args.max_len,
        precompute_ref_log_probs=True,
        report_to=[],
        use_cpu=True,
        logging_steps=10**6,
        save_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    clock = Clock()
    trainer = DPOTrainer(
        model=model, args=cfg, train_dataset=datasets.Dataset.from_list(rows), processing_class=tok, callbacks=[clock]
    )
    trainer.train()
    (t0, n0), (t1, n1) = clock.marks[args.warmup - 1], clock.marks[-1]
    return {"tok_s": (n1 - n0) / (t1 - t0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2, help="alternating runs per side; the best counts")
    p.add_argument("--model", default="", help="HF model dir (default: a tiny random Llama built here)")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # TRL and datasets progress bars
    rows = make_rows(args.pairs, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if not model_dir:
            from flywheel.models import TinyModelConfig, build_tiny_causal_lm, smollm2_tokenizer

            tok_dir = smollm2_tokenizer(os.path.expanduser("~/.cache/flywheel"))
            model_dir = build_tiny_causal_lm(os.path.join(tmp, "tiny"), tok_dir, TinyModelConfig(arch="llama"), seed=0)
        # alternate the two sides so a neighbour's load spike hits both; keep each side's best run
        ours, trl = [], []
        for r in range(args.repeats):
            ours.append(bench_ours(model_dir, rows, args))
            trl.append(bench_trl(model_dir, rows, args, os.path.join(tmp, f"trl-{r}")))
    best_ours = max(ours, key=lambda m: m["tok_s"])
    best_trl = max(trl, key=lambda m: m["tok_s"])
    print(
        f"pairs={args.pairs} steps={args.steps} (timed after {args.warmup}) batch={args.batch} "
        f"threads={args.threads} max_len={args.max_len} repeats={args.repeats}"
    )
    print(
        f"flywheel loop : {best_ours['tok_s']:8.0f} tok/s  runs {[round(m['tok_s']) for m in ours]}"
        f"  (one-off reference pass {best_ours['ref_pass_s']:.1f} s)"
    )
    print(f"TRL DPOTrainer: {best_trl['tok_s']:8.0f} tok/s  runs {[round(m['tok_s']) for m in trl]}")
    print(f"ratio flywheel / TRL = {best_ours['tok_s'] / best_trl['tok_s']:.2f}x")


if __name__ == "__main__":
    main()
