"""Training recipes against the held-out suites: which data and rates move the model, measured fast.

A round's training on 2 CPU cores takes tens of minutes, so comparing data mixes and learning rates through
whole rounds is slow. This bench takes one finished round's judged responses and datasets, builds candidate
training sets from them with flywheel's own selection pieces (instruction variants, repair), trains each
recipe with a plain torch loop on flywheel's tokenization and losses (SFT, then optionally DPO with frozen
reference log-probs), and scores every result on the same held-out IF and math suites the `evaluate` stage
uses (greedy decoding, the suites' first N prompts). It runs on any device; on a GPU a recipe takes seconds.

The figures it prints rank recipes; the round's own figures still come from a real round (`flywheel
iterate`), since this loop is not DeepSpeed's and its greedy decoding is not vLLM's.

  python bench/bench_recipes.py build --round runs/demo/round-001 --out /tmp/recipes
  python bench/bench_recipes.py run --model DIR --data /tmp/recipes [--device cuda] [--only NAME,..]
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import sys
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

SUITE_DIR = os.path.join(os.path.dirname(__file__), "..", "flywheel", "data")


def _read(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _rows(pattern: str) -> list[dict[str, Any]]:
    return [row for path in sorted(glob.glob(pattern)) for row in _read(path)]


def _write(path: str, rows: list[dict[str, Any]]) -> None:
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


# ---------------------------------------------------------------- build (CPU, from a finished round)


def build(round_dir: str, out: str, seed: int) -> None:
    from flywheel.judges.variants import instruction_variants

    sft = _rows(f"{round_dir}/datasets/*/sft_general/*.jsonl")
    pref = _rows(f"{round_dir}/datasets/*/preference/*.jsonl")
    judged = _rows(f"{round_dir}/judge/*/part-*.jsonl")
    metas = {r["prompt_id"]: r.get("meta") for r in judged}
    plain = [r for r in sft if r.get("kind") != "if_variant"]
    plain_pref = [p for p in pref if p.get("judge") != "verifier_repair" or "#variant" not in str(p.get("prompt_id"))]
    os.makedirs(out, exist_ok=True)
    sets: dict[str, tuple[list, list]] = {"base": (sft, pref), "plain": (plain, plain_pref)}
    for name, per_row, most in (("var8", 8, 2), ("var8m3", 8, 3), ("var16", 16, 2)):
        vs, vp, counts = instruction_variants(plain, metas, per_row, seed, 0.5, max_instructions=most)
        sets[name] = (plain + vs, plain_pref + vp)
        print(name, dict(counts), file=sys.stderr)
    # the plain answers repeated, so a format is tied to its instruction and not learned as the default
    vs, vp, _ = instruction_variants(plain, metas, 8, seed, 0.5)
    sets["var8bal"] = (plain * 4 + vs, plain_pref + vp)
    for name, (s, p) in sets.items():
        _write(f"{out}/sft_{name}.jsonl", s)
        _write(f"{out}/pref_{name}.jsonl", p)
        print(f"{name}: {len(s)} sft rows, {len(p)} pairs, kinds {dict(Counter(r.get('kind') for r in s))}")
    recipes = [
        {"name": "initial"},
        {"name": "base-sft", "sft": "base", "lr": 5e-5, "epochs": 2},
        {"name": "var8", "sft": "var8", "lr": 5e-5, "epochs": 2},
        {"name": "var16", "sft": "var16", "lr": 5e-5, "epochs": 2},
        {"name": "var8bal", "sft": "var8bal", "lr": 5e-5, "epochs": 2},
        {"name": "var8-lr1e-4", "sft": "var8", "lr": 1e-4, "epochs": 2},
        {"name": "var8m3", "sft": "var8m3", "lr": 5e-5, "epochs": 2},
        {"name": "var8-dpo1e-5", "sft": "var8", "lr": 5e-5, "epochs": 2, "dpo": "var8", "dpo_lr": 1e-5},
        {"name": "plain-sft", "sft": "plain", "lr": 5e-5, "epochs": 2},
        {"name": "base-sft-dpo", "sft": "base", "lr": 5e-5, "epochs": 2, "dpo": "base", "dpo_lr": 2e-6},
        {"name": "var8-lr2e-5-e3", "sft": "var8", "lr": 2e-5, "epochs": 3},
        {"name": "var8-e4", "sft": "var8", "lr": 5e-5, "epochs": 4},
        {"name": "var8-dpo3e-6", "sft": "var8", "lr": 5e-5, "epochs": 2, "dpo": "var8", "dpo_lr": 3e-6},
    ]
    with open(f"{out}/recipes.json", "w") as f:
        json.dump(recipes, f, indent=1)


# ---------------------------------------------------------------- run (any device)


def _suites(n_if: int, n_math: int) -> tuple[list[dict], list[dict]]:
    ifs = _read(f"{SUITE_DIR}/eval_if.jsonl")[:n_if]
    maths = _read(f"{SUITE_DIR}/eval_math.jsonl")[:n_math]
    return ifs, maths


def _generate(model: Any, tok: Any, prompts: list[list[dict]], max_new: int, device: str, bs: int) -> list[str]:
    import torch

    tok.padding_side = "left"
    out: list[str] = []
    model.eval()
    for i in range(0, len(prompts), bs):
        texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in prompts[i : i + bs]]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
        out += tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return out


def _score(ifs: list[dict], maths: list[dict], a_if: list[str], a_math: list[str]) -> dict[str, Any]:
    from flywheel.evals.ifeval import aggregate, score_response
    from flywheel.judges.verifiers import verify

    res = [score_response(a, p["meta"]["instructions"]) for p, a in zip(ifs, a_if)]
    acc = aggregate(res)
    kinds: Counter[str] = Counter()
    for r in res:
        for k, s in zip(r["kinds"], r["strict"]):
            kinds[k] += int(s)
    return {
        "if_prompt_strict": acc["prompt_level_strict"],
        "if_instruction_strict": acc["instruction_level_strict"],
        "math": sum(bool(verify(p["meta"], a)) for p, a in zip(maths, a_math)) / max(1, len(maths)),
        "per_prompt": [int(r["prompt_strict"]) for r in res],
        "kinds": dict(kinds),
        "chars": sum(len(a) for a in a_if) / max(1, len(a_if)),
    }


def _fit_sft(model: Any, tok: Any, rows: list[dict], lr: float, epochs: float, device: str, seed: int) -> float:
    import torch

    from flywheel.train.data import bucket_batches, collate_sft, sft_examples
    from flywheel.train.losses import sft_nll

    ex, _ = sft_examples(tok, rows, 256, "left_prompt")
    batches = [b for e in range(math.ceil(epochs)) for b in bucket_batches([len(x.input_ids) for x in ex], 8, seed + e)]
    batches = batches[: round(len(batches) * epochs / math.ceil(epochs))]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(1, len(batches)))))
    model.train()
    loss = torch.zeros(())
    for idx in batches:
        b = {k: v.to(device) for k, v in collate_sft([ex[i] for i in idx], tok.pad_token_id).items()}
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        loss = sft_nll(logits.float(), b["labels"]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def _fit_dpo(model: Any, tok: Any, rows: list[dict], lr: float, beta: float, device: str, seed: int) -> float:
    import torch

    from flywheel.train.data import bucket_batches, collate_pairs, pair_examples
    from flywheel.train.losses import dpo_loss, sequence_logps, sft_nll

    ex = pair_examples(tok, rows, 256, "left_prompt")
    batches = bucket_batches([max(len(e.chosen.input_ids), len(e.rejected.input_ids)) for e in ex], 4, seed)

    def logps(b: dict) -> Any:
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        return logits.float()

    model.eval()
    ref = {}
    with torch.no_grad():
        for idx in batches:
            b = {k: v.to(device) for k, v in collate_pairs([ex[i] for i in idx], tok.pad_token_id).items()}
            ref[tuple(idx)] = sequence_logps(logps(b), b["labels"])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    loss = torch.zeros(())
    for idx in batches:
        b = {k: v.to(device) for k, v in collate_pairs([ex[i] for i in idx], tok.pad_token_id).items()}
        logits = logps(b)
        lp = sequence_logps(logits, b["labels"])
        n = len(idx)
        r = ref[tuple(idx)]
        loss = dpo_loss(lp[:n], lp[n:], r[:n], r[n:], beta).mean() + 1e-3 * sft_nll(logits[:n], b["labels"][:n]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def _paired_interval(a: list[int], b: list[int], seed: int = 0, n: int = 2000) -> tuple[float, float, float]:
    rng = random.Random(seed)
    d = [x - y for x, y in zip(a, b)]
    means = sorted(sum(d[rng.randrange(len(d))] for _ in d) / len(d) for _ in range(n))
    return sum(d) / len(d), means[int(0.025 * n)], means[int(0.975 * n)]


def run(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    with open(f"{args.data}/recipes.json") as f:
        recipes = json.load(f)
    if args.only:
        keep = set(args.only.split(","))
        recipes = [r for r in recipes if r["name"] in keep or r["name"] == "initial"]
    tok = AutoTokenizer.from_pretrained(args.model)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    ifs, maths = _suites(args.if_prompts, args.math_prompts)
    base_sd = None
    results: dict[str, Any] = {}
    for rec in recipes:
        t0 = time.time()
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).to(args.device)
        if base_sd is None:
            base_sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        info = ""
        if rec.get("sft"):
            rows = _read(f"{args.data}/sft_{rec['sft']}.jsonl")[: args.max_rows or None]
            info += (
                f"sft {len(rows)} rows loss {_fit_sft(model, tok, rows, rec['lr'], rec['epochs'], args.device, 0):.3f} "
            )
        if rec.get("dpo"):
            rows = _read(f"{args.data}/pref_{rec['dpo']}.jsonl")[: args.max_rows or None]
            info += f"dpo {len(rows)} pairs loss {_fit_dpo(model, tok, rows, rec['dpo_lr'], 0.1, args.device, 0):.3f} "
        t1 = time.time()
        a_if = _generate(model, tok, [p["messages"] for p in ifs], args.max_tokens, args.device, args.batch)
        a_math = _generate(model, tok, [p["messages"] for p in maths], args.max_tokens, args.device, args.batch)
        res = _score(ifs, maths, a_if, a_math)
        res.update(train_s=t1 - t0, eval_s=time.time() - t1, sample=a_if[:3])
        results[rec["name"]] = res
        line = f"{rec['name']:>16}: IF {res['if_prompt_strict']:.3f} instr {res['if_instruction_strict']:.3f} "
        line += f"math {res['math']:.3f} chars {res['chars']:.0f} | {info}| {t1 - t0:.0f}+{time.time() - t1:.0f}s"
        if "initial" in results and rec["name"] != "initial":
            d, lo, hi = _paired_interval(res["per_prompt"], results["initial"]["per_prompt"])
            line += f" | dIF {d:+.3f} [{lo:+.3f},{hi:+.3f}]"
        print(line, flush=True)
        del model
        if args.out:  # after every recipe, so a run cut short keeps what it measured
            with open(args.out, "w") as f:
                json.dump(results, f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--round", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("--model", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--device", default="cpu")
    r.add_argument("--only", default="")
    r.add_argument("--if-prompts", type=int, default=300)
    r.add_argument("--math-prompts", type=int, default=150)
    r.add_argument("--max-tokens", type=int, default=192)
    r.add_argument("--batch", type=int, default=160)
    r.add_argument("--max-rows", type=int, default=0)
    r.add_argument("--out", default="")
    a = p.parse_args()
    if a.cmd == "build":
        build(a.round, a.out, a.seed)
    else:
        run(a)


if __name__ == "__main__":
    main()
