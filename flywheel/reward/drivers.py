"""Drivers of ``flywheel reward train`` and ``flywheel reward eval``.

Training: backbone + fresh 5-output head (:func:`flywheel.reward.model.build_reward_model`) -> one
:class:`flywheel.reward.job.RewardJob` through the policy's Ray Train + DeepSpeed runner
(:func:`flywheel.engines.ray_train.run_training`) -> a Hugging Face export that ``models.reward`` can name.
Evaluation: held-out pairs (:mod:`flywheel.reward.pairs`) scored by vLLM or transformers, accuracy by
category (:mod:`flywheel.reward.accuracy`), logged to MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from flywheel.config import expand
from flywheel.errors import FlywheelError
from flywheel.reward.config import RewardConfig
from flywheel.store import fingerprint, read_jsonl

log = logging.getLogger("flywheel")


def data_path(spec: str) -> str:
    """A local JSONL path: ``builtin:NAME`` (shipped in ``flywheel/data``) or a path; checked to exist."""
    from flywheel.config import builtin_or_path

    path = builtin_or_path(spec)
    if not os.path.isfile(path):
        raise FlywheelError(f"reward data file not found: {spec}")
    return path


def backbone_dir(spec: str, cache_dir: str) -> str | None:
    """Local directory of the backbone (``smollm2`` is pulled and converted once); None for ``tiny``."""
    from flywheel.models import check_model_dir, pull_smollm2

    if spec == "smollm2":
        return pull_smollm2(cache_dir)
    if spec == "tiny":
        return None
    return check_model_dir(expand(spec), "reward backbone")


def initial_reward_model(backbone: str, cache_dir: str, seed: int, tiny: Any = None) -> str:
    """Backbone + fresh head, built once per (backbone, seed) under ``cache_dir``: the untrained baseline."""
    from dataclasses import asdict, replace

    from flywheel.models import TinyModelConfig, smollm2_tokenizer
    from flywheel.reward.model import build_reward_model

    src = backbone_dir(backbone, cache_dir)
    tiny = replace(tiny or TinyModelConfig(), arch="llama")
    key = fingerprint(backbone, src and os.path.realpath(src), seed, asdict(tiny) if src is None else None)
    out = os.path.join(expand(cache_dir), "models", f"reward-init-{os.path.basename(str(src or 'tiny'))}-{key}")
    if os.path.isfile(os.path.join(out, "config.json")):
        return out
    tokenizer = src or smollm2_tokenizer(cache_dir)
    return build_reward_model(out, src, tokenizer, tiny=tiny, seed=seed)


def check_rows(path: str, limit: int = 0) -> int:
    """Count rows, failing on the first one that is not a reward row (``file:line`` in the message)."""
    from flywheel.judges.attributes import helpsteer_row_to_target
    from flywheel.reward.data import row_messages

    n = 0
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            row_messages(row)
            helpsteer_row_to_target(row)
        except FlywheelError as err:
            raise FlywheelError(f"{path}:{n}: {err}") from None
        if limit and n >= limit:
            break
    if n == 0:
        raise FlywheelError(f"{path}: no rows")
    return n


def train(
    data: list[str], rc: RewardConfig, train_cfg: Any, backbone: str, out_dir: str, cache_dir: str, tiny: Any = None
) -> dict:
    """Train a reward model on HelpSteer2-schema files; returns the job's metrics plus ``out_dir``."""
    from dataclasses import replace

    from flywheel.engines.ray_train import run_training
    from flywheel.reward.job import REWARD_KIND, RewardJob

    paths = [data_path(d) for d in data]
    rows = sum(check_rows(p) for p in paths)
    init = initial_reward_model(backbone, cache_dir, rc.seed, tiny)
    job = RewardJob(
        name="reward",
        kind=REWARD_KIND,
        init_model=init,
        ref_model=None,
        data=paths,
        out_dir=os.path.abspath(expand(out_dir)),
        stage=rc.stage,
        trainable_layers=rc.trainable_layers,
    )
    log.info("reward: training on %d rows from %s -> %s", rows, ", ".join(paths), job.out_dir)
    t0 = time.perf_counter()
    res = run_training([job], replace(train_cfg), os.path.join(expand(cache_dir), "ray-train"))
    metrics = dict(res.get("reward", {}))
    metrics.update(out_dir=job.out_dir, init_model=init, rows=rows, fit_seconds=time.perf_counter() - t0)
    return metrics


def score_fn(model_dir: str, scorer: str, engine_cfg: Any, ray_cfg: Any, seed: int):
    """``(score, close)`` for one model on the chosen scorer."""
    if scorer == "transformers":
        from flywheel.reward.hf_scorer import HFRewardScorer

        return HFRewardScorer(model_dir, batch_size=max(1, min(engine_cfg.batch_size, 16))).score, lambda: None
    from flywheel.engines.reward_scoring import vllm_scorer

    return vllm_scorer(model_dir, engine_cfg, ray_cfg, seed)


def evaluate_models(
    models: dict[str, str],
    pairs_file: str,
    rc: RewardConfig,
    weights: dict[str, float],
    engine_cfg: Any,
    ray_cfg: Any,
    out_dir: str,
) -> dict[str, dict[str, float]]:
    """Accuracy by category of each named model on the same held-out pairs; scored pairs go to ``out_dir``."""
    from flywheel.reward.accuracy import evaluate
    from flywheel.reward.pairs import load_pairs

    path = data_path(pairs_file)
    pairs = load_pairs(list(read_jsonl(path)), weights, rc.hard_gap)
    if not pairs:
        raise FlywheelError(f"{pairs_file}: no pairs with differing ground-truth rewards")
    os.makedirs(out_dir, exist_ok=True)
    results = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        score, close = score_fn(model, rc.scorer, engine_cfg, ray_cfg, rc.seed)
        try:
            metrics, scored = evaluate(pairs, score, weights)
        finally:
            close()
        metrics["score_seconds"] = time.perf_counter() - t0
        with open(os.path.join(out_dir, f"pairs-{name}.jsonl"), "w") as f:
            for row in scored:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        results[name] = metrics
        log.info("reward eval %s: %s", name, {k: round(v, 4) for k, v in metrics.items() if k.startswith("accuracy")})
    return results
