"""Held-out implicit-reward accuracy of DPO then RPO on SmolLM2-135M-Instruct (the `local` profile's model).

Training pairs come from the shipped HelpSteer2-format set (``flywheel/data/helpsteer_train.jsonl``): per
prompt, the response with the highest ground-truth weighted reward is chosen and the lowest rejected, both
rewards kept (RPO needs them). Held-out pairs are every differing pair of ``helpsteer_heldout.jsonl`` (other
prompts). Both stages run the real path: Ray Train + DeepSpeed (gloo, ``train.num_workers`` workers), DPO from
and against the initial model, then RPO from and against the DPO export.

Accuracy = share of held-out pairs where the implicit reward ``beta * (log pi(y|x) - log pi_ref(y|x))``,
measured against the *initial* model, ranks chosen above rejected (ties count as wrong). The initial
model's own log-likelihood preference (``log pi_0(chosen) > log pi_0(rejected)``) is printed as a baseline.

    .venv/bin/python bench/preference_heldout.py                       # all pairs, full epochs
    .venv/bin/python bench/preference_heldout.py --train-pairs 200 --heldout best-worst   # ~35 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import replace

from omegaconf import OmegaConf


def best_worst_pairs(rows: list[dict], weights: dict) -> list[dict]:
    """One preference row per prompt: highest vs lowest ground-truth reward (prompts with a tie skipped)."""
    from flywheel.judges.attributes import ATTRIBUTES, aggregate
    from flywheel.reward.data import row_messages

    groups: dict[str, list[tuple[float, list[dict]]]] = defaultdict(list)
    for row in rows:
        messages = row_messages(row)
        groups[json.dumps(messages[:-1])].append((aggregate({a: row[a] for a in ATTRIBUTES}, weights), messages))
    out = []
    for members in groups.values():
        members.sort(key=lambda m: m[0])
        (lo, ml), (hi, mh) = members[0], members[-1]
        if hi > lo and mh[-1]["content"] != ml[-1]["content"]:
            out.append(
                {
                    "prompt": mh[:-1],
                    "chosen": [mh[-1]],
                    "rejected": [ml[-1]],
                    "reward_chosen": hi,
                    "reward_rejected": lo,
                }
            )
    return out


def logps(model_dir: str, examples: list, pad_id: int):
    import torch
    from transformers import AutoModelForCausalLM

    from flywheel.train.reference import compute_ref_logps

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return compute_ref_logps(model, examples, 8, pad_id)


def accuracy(policy, ref, categories: list[str]) -> dict[str, float]:
    """Share of pairs whose implicit reward margin is > 0, overall and per category."""
    margin = (policy[:, 0] - ref[:, 0]) - (policy[:, 1] - ref[:, 1])
    right = (margin > 0).tolist()
    out = {"all": sum(right) / len(right)}
    for c in sorted(set(categories)):
        picked = [r for r, cat in zip(right, categories) if cat == c]
        out[c] = sum(picked) / len(picked)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/local.yaml")
    ap.add_argument("--out", default="runs/bench-preference", help="work directory (pairs, exports)")
    ap.add_argument("--train-pairs", type=int, default=0, help="use the first N training pairs (0 = all)")
    ap.add_argument(
        "--heldout",
        choices=["all", "best-worst"],
        default="all",
        help="every differing held-out pair, or one (best, worst) pair per held-out prompt",
    )
    ap.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    from flywheel.config import builtin_or_path, load_config
    from flywheel.engines.pool import ensure_ray
    from flywheel.engines.ray_train import run_training
    from flywheel.readers import read_jsonl
    from flywheel.reward.pairs import helpsteer_pairs
    from flywheel.train.data import pair_examples
    from flywheel.train.job import TrainJob

    # full epochs unless the command line says otherwise (the profile caps steps for the demo round)
    cfg = load_config(args.config, ["train.dpo.max_steps=-1", "train.rpo.max_steps=-1", *args.overrides])
    weights = dict(cfg.judges.weights)
    from flywheel.config import expand
    from flywheel.models import pull_smollm2

    init = pull_smollm2(expand(cfg.run.cache_dir)) if cfg.models.initial == "smollm2" else cfg.models.initial
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    train_rows = best_worst_pairs(list(read_jsonl(builtin_or_path("builtin:helpsteer_train.jsonl"))), weights)
    if args.train_pairs:
        train_rows = train_rows[: args.train_pairs]
    train_file = os.path.join(out, "train_pairs.jsonl")
    with open(train_file, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in train_rows)
    held_rows = list(read_jsonl(builtin_or_path("builtin:helpsteer_heldout.jsonl")))
    held = helpsteer_pairs(held_rows, weights)
    if args.heldout == "best-worst":  # keep, per prompt, the pair with the largest ground-truth gap
        widest: dict = {}
        for p in held:
            if p["prompt_id"] not in widest or p["gt_gap"] > widest[p["prompt_id"]]["gt_gap"]:
                widest[p["prompt_id"]] = p
        held = list(widest.values())

    dpo_stage = OmegaConf.to_object(OmegaConf.structured(cfg.train.dpo))
    rpo_stage = OmegaConf.to_object(OmegaConf.structured(cfg.train.rpo))
    jobs = [TrainJob("dpo", "dpo", init, init, [train_file], os.path.join(out, "dpo"), dpo_stage)]
    prev = jobs[0].out_dir
    for i in range(1, rpo_stage.iterations + 1):
        jobs.append(
            TrainJob(f"rpo_{i}", "rpo", prev, prev, [train_file], os.path.join(out, f"rpo_{i}"), replace(rpo_stage))
        )
        prev = jobs[-1].out_dir
    ensure_ray(cfg.ray.address, None)
    t0 = time.perf_counter()
    metrics = run_training(jobs, cfg.train, os.path.join(out, "ray"))
    train_s = time.perf_counter() - t0

    tok = AutoTokenizer.from_pretrained(init)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    examples = pair_examples(tok, held, dpo_stage.max_len, dpo_stage.truncation)
    cats = [p["category"] for p in held]
    base = logps(init, examples, pad)
    likelihood = (base[:, 0] > base[:, 1]).float().mean().item()
    results = {job.name: accuracy(logps(job.out_dir, examples, pad), base, cats) for job in jobs}
    print(
        f"train pairs {len(train_rows)} | held-out pairs {len(held)} "
        f"({', '.join(f'{c} {cats.count(c)}' for c in sorted(set(cats)))}) | training {train_s:.0f} s"
    )
    for name in metrics:
        m = metrics[name]
        print(
            f"  {name}: steps {m.get('steps')} loss {m.get('loss', float('nan')):.4f} "
            f"train reward-accuracy {m.get('reward_accuracy', float('nan')):.3f}"
        )
    print(f"baseline (initial model, log pi(chosen) > log pi(rejected)): {likelihood:.3f}")
    for name, acc in results.items():
        print(
            f"held-out implicit-reward accuracy after {name} (vs initial model): "
            + ", ".join(f"{k} {v:.3f}" for k, v in acc.items())
        )
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(
            {
                "train_pairs": len(train_rows),
                "heldout_pairs": len(held),
                "training_seconds": train_s,
                "baseline_likelihood": likelihood,
                "accuracy": results,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    sys.exit(main())
