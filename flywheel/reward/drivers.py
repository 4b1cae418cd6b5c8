"""Drivers of ``flywheel reward train`` and ``flywheel reward eval``.

Training: backbone + fresh 5-output head (:func:`flywheel.reward.model.build_reward_model`) -> one
:class:`flywheel.reward.job.RewardJob` through the policy's Ray Train + DeepSpeed runner
(:func:`flywheel.engines.ray_train.run_training`) -> a Hugging Face export that ``models.reward`` can name.
Evaluation: held-out pairs (:mod:`flywheel.reward.pairs`) scored by vLLM or transformers, accuracy by
category (:mod:`flywheel.reward.accuracy`), logged to MLflow.
Data: any source :mod:`flywheel.reward.sources` reads (HelpSteer2's JSONL, ``.jsonl.gz``, Parquet or its split
directory, local or remote); training reads a local normalized JSONL copy of it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from flywheel.config import expand
from flywheel.errors import FlywheelError
from flywheel.readers import read_jsonl
from flywheel.reward.config import RewardConfig
from flywheel.store import fingerprint

log = logging.getLogger("flywheel")


def data_path(spec: str, cache_dir: str, split: str = "train", storage_options: dict | None = None) -> str:
    """A local JSONL file of reward rows for ``spec``, which the trainer reads.

    ``spec`` is anything :func:`flywheel.reward.sources.read_reward_rows` reads: ``builtin:NAME`` (shipped in
    ``flywheel/data``), a JSONL, ``.jsonl.gz`` or Parquet file (local or an fsspec URI), or a directory with
    HelpSteer2's ``train.*`` / ``validation.*`` files (``split`` picks one). The rows are checked and copied
    once per source content under ``{cache_dir}/reward-data`` (:func:`flywheel.reward.sources.materialize`).
    """
    from flywheel.reward.sources import materialize

    return materialize(spec, cache_dir, split=split, storage_options=storage_options)


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
    data: list[str],
    rc: RewardConfig,
    train_cfg: Any,
    backbone: str,
    out_dir: str,
    cache_dir: str,
    tiny: Any = None,
    storage_options: dict | None = None,
) -> dict:
    """Train a reward model on HelpSteer2-layout sources; returns the job's metrics plus ``out_dir``.

    Args:
        data: sources as :func:`data_path` takes them; a directory gives its ``train`` split.
        storage_options: passed to fsspec for remote sources.
    """
    from dataclasses import replace

    from flywheel.engines.ray_train import run_training
    from flywheel.reward.job import REWARD_KIND, RewardJob

    paths = [data_path(d, cache_dir, "train", storage_options) for d in data]
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
    log.info("reward: training on %d rows from %s (%s) -> %s", rows, ", ".join(data), ", ".join(paths), job.out_dir)
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

    return vllm_scorer(model_dir, engine_cfg, ray_cfg, seed, num_actors=engine_cfg.num_actors)


def evaluate_models(
    models: dict[str, str],
    pairs_file: str,
    rc: RewardConfig,
    weights: dict[str, float],
    engine_cfg: Any,
    ray_cfg: Any,
    out_dir: str,
    storage_options: dict | None = None,
) -> dict[str, dict[str, float]]:
    """Accuracy by category of each named model on the same held-out pairs; scored pairs go to ``out_dir``.

    Args:
        pairs_file: rated rows (paired per prompt) or preference rows, in any source
            :func:`flywheel.reward.sources.read_reward_rows` reads; a directory gives its ``validation`` split.
        storage_options: passed to fsspec for a remote source.
    """
    from flywheel.reward.accuracy import accuracy_line, evaluate
    from flywheel.reward.pairs import load_pairs
    from flywheel.reward.sources import read_reward_rows

    rows = read_reward_rows(pairs_file, storage_options, split="validation")
    pairs = load_pairs(rows, weights, rc.hard_gap)
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
        log.info("reward eval %s: %s", name, accuracy_line(metrics))
    return results
