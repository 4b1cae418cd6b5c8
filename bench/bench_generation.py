"""Generation throughput: flywheel's engine pool vs plain transformers batched ``generate``.

Same chat prompts (the prompt stage's own first-step requests), same model, same cores, same greedy
decoding and token budget. The pool side is what the ``prompts``/``responses`` stages run: ``EnginePool`` of
vLLM ``ChatEngine`` actors on Ray, one core pinned per actor, large batches per request. The baseline is
``AutoModelForCausalLM.generate`` on left-padded batches with ``torch.set_num_threads(cores)``. Tokens are the
generated tokens of each side (stop token included, padding excluded); rates are over wall time of the
generation calls after the engines/model are loaded. Run it under the heavy lock, it takes minutes:

    flock /tmp/flywheel-heavy.lock .venv/bin/python bench/bench_generation.py                # SmolLM2-135M, 2 cores
    flock /tmp/flywheel-heavy.lock .venv/bin/python bench/bench_generation.py --prompts 32 --max-tokens 64
"""

from __future__ import annotations

import argparse
import os
import time


def bench_prompts(n: int) -> list[list[dict]]:
    """``n`` chat prompts cycling over the prompt stage's request builders (questions, writing, math, code)."""
    from flywheel.sdg import templates
    from flywheel.sdg.defaults import DEFAULT_CODE_KEYWORDS, DEFAULT_DOC_TYPES, DEFAULT_MATH_KEYWORDS, DEFAULT_TOPICS

    makers = [
        lambda i: templates.questions_prompt(DEFAULT_TOPICS[i % len(DEFAULT_TOPICS)], 3),
        lambda i: templates.writing_tasks_prompt(
            DEFAULT_DOC_TYPES[i % len(DEFAULT_DOC_TYPES)], DEFAULT_TOPICS[i % len(DEFAULT_TOPICS)], 2
        ),
        lambda i: templates.math_problem_prompt(DEFAULT_MATH_KEYWORDS[i % len(DEFAULT_MATH_KEYWORDS)], "high school"),
        lambda i: templates.code_problem_prompt(DEFAULT_CODE_KEYWORDS[i % len(DEFAULT_CODE_KEYWORDS)], "beginner"),
    ]
    return [makers[i % len(makers)](i // len(makers)) for i in range(n)]


def bench_pool(model_dir: str, prompts: list[list[dict]], args) -> dict:
    from flywheel.engines.pool import EnginePool, ensure_ray
    from flywheel.engines.vllm_engine import ChatEngine, EngineSpec

    ensure_ray("local", args.cores)
    spec = EngineSpec(
        model=model_dir,
        dtype=args.dtype,
        max_model_len=1024,
        kv_cache_gb=1.0,
        enforce_eager=True,
        prefix_caching={"default": None, "on": True, "off": False}[args.prefix_caching],
        fast_top_p=args.fast_top_p == "on",
    )
    t = time.perf_counter()
    pool = EnginePool(
        ChatEngine, spec, num_actors=args.actors, cpus_per_actor=args.cores / args.actors, allocator=args.allocator
    )
    start_s = time.perf_counter() - t
    sampling = {"temperature": args.temperature, "max_tokens": args.max_tokens}
    if args.temperature > 0:
        sampling.update(top_p=args.top_p, **({"top_k": args.top_k} if args.top_k > 0 else {}))
    size = args.batch or -(-len(prompts) // (args.actors * args.requests_per_actor))
    jobs = [(i, (prompts[s : s + size], sampling, 1)) for i, s in enumerate(range(0, len(prompts), size))]
    tokens = 0

    def on_result(_key, out: dict) -> None:
        nonlocal tokens
        tokens += out["tokens"]

    t = time.perf_counter()
    pool.map("chat", jobs, on_result)
    wall = time.perf_counter() - t
    pool.shutdown()
    return {"tokens": tokens, "seconds": wall, "tok_s": tokens / wall, "start_s": start_s}


def bench_transformers(model_dir: str, prompts: list[list[dict]], args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.cores)
    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[args.hf_dtype]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    eos = tok.eos_token_id
    tokens = 0
    t = time.perf_counter()
    for s in range(0, len(texts), args.hf_batch):
        enc = tok(texts[s : s + args.hf_batch], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=args.max_tokens, do_sample=False, pad_token_id=eos)
        new = out[:, enc["input_ids"].shape[1] :]  # [batch, generated]
        for row in new.tolist():
            # count up to and including the first stop token; what follows is padding
            tokens += row.index(eos) + 1 if eos in row else len(row)
    wall = time.perf_counter() - t
    return {"tokens": tokens, "seconds": wall, "tok_s": tokens / wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="", help="HF model dir (default: SmolLM2-135M-Instruct, pulled once)")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--requests-per-actor", type=int, default=1, help="prompts are split into actors * this requests")
    p.add_argument(
        "--batch",
        default="0",
        help="sequences per request (what engine.batch_size sets); a comma list times each in turn; 0: from "
        "--requests-per-actor",
    )
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (the evaluate stage's decoding)")
    p.add_argument("--top-p", type=float, default=1.0, help="with --temperature > 0 (the SDG stages use 0.95)")
    p.add_argument("--top-k", type=int, default=-1, help="with --temperature > 0; -1: off")
    p.add_argument("--fast-top-p", default="on", help="engine.fast_top_p: on | off; a comma list times each in turn")
    p.add_argument("--dtype", default="bfloat16", help="vLLM dtype")
    p.add_argument(
        "--allocator",
        default="system",
        help="engine actors' allocator (engine.allocator); a comma list times each in turn",
    )
    p.add_argument("--prefix-caching", default="default", choices=("default", "on", "off"))
    p.add_argument("--skip-hf", action="store_true", help="time the engine pool only")
    p.add_argument("--hf-dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--hf-batch", type=int, default=64)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    model_dir = args.model
    if not model_dir:
        from flywheel.models import pull_smollm2

        model_dir = pull_smollm2(os.path.expanduser("~/.cache/flywheel"))
    prompts = bench_prompts(args.prompts)
    pools = {}
    arms = [
        (allocator, int(batch), fast)
        for allocator in args.allocator.split(",")
        for batch in args.batch.split(",")
        for fast in args.fast_top_p.split(",")
    ]
    for i, (allocator, batch, fast) in enumerate(arms):  # one pool after another, same prompts, same run
        args_one = argparse.Namespace(**{**vars(args), "allocator": allocator, "batch": batch, "fast_top_p": fast})
        label = f"{i}: {allocator}, batch {batch or 'auto'}, fast top-p {fast}"
        pool = pools[label] = bench_pool(model_dir, prompts, args_one)
        print(
            f"engine pool ({args.actors} vLLM actors, {args.dtype}, allocator {allocator}, sequences per request "
            f"{batch or 'auto'}, temperature {args.temperature}, top-p {args.top_p}, fast top-p {fast}, prefix "
            f"caching {args.prefix_caching}): {pool['tokens']:6d} tok in {pool['seconds']:6.1f} s = "
            f"{pool['tok_s']:7.1f} tok/s  (engine start {pool['start_s']:.1f} s, not timed)",
            flush=True,
        )
    if len(pools) > 1:
        first = next(iter(pools))
        print(", ".join(f"[{a}] / [{first}] = {p['tok_s'] / pools[first]['tok_s']:.3f}x" for a, p in pools.items()))
    if args.skip_hf:
        return
    hf = bench_transformers(model_dir, prompts, args)
    print(
        f"model={os.path.basename(model_dir.rstrip('/'))} prompts={args.prompts} max_tokens={args.max_tokens} "
        f"greedy cores={args.cores}"
    )
    print(
        f"transformers generate ({args.hf_dtype}, batch {args.hf_batch}): {hf['tokens']:6d} tok in "
        f"{hf['seconds']:6.1f} s = {hf['tok_s']:7.1f} tok/s"
    )
    print(f"ratio pool / transformers = {pool['tok_s'] / hf['tok_s']:.2f}x")


if __name__ == "__main__":
    main()
