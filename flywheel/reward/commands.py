"""``flywheel reward train`` and ``flywheel reward eval`` (parsers and bodies; cli.py only dispatches).

    flywheel reward train [--data PATH ...] [--out DIR] [--config PATH] [key=value ...]
    flywheel reward eval  [--model DIR] [--data PATH] [--baseline] [--scorer vllm|transformers] [--config PATH]

``--data`` defaults to the shipped set (``reward.train_file`` / ``reward.heldout_file``); point it at
HelpSteer2's ``train.jsonl`` / ``validation.jsonl`` to use the real data. ``reward.*`` keys override
:class:`flywheel.reward.config.RewardConfig` (e.g. ``reward.stage.lr=1e-4``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from flywheel.config import Config, expand, load_config
from flywheel.errors import FlywheelError
from flywheel.reward.config import RewardConfig


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``reward train`` / ``reward eval`` to the top-level subparsers (``common`` adds --config/overrides)."""
    rw = sub.add_parser("reward", help="train and evaluate the 5-attribute reward model")
    rw_sub = rw.add_subparsers(dest="action", required=True)
    tr = rw_sub.add_parser("train", help="regression on HelpSteer2-schema JSONL with Ray Train + DeepSpeed")
    tr.add_argument("--data", action="append", default=None, help="JSONL file (repeatable); default reward.train_file")
    tr.add_argument("--out", default=None, help="export directory; default reward.out_dir or {run.root}/reward/model")
    ev = rw_sub.add_parser("eval", help="pairwise accuracy on held-out pairs, by category, logged to MLflow")
    ev.add_argument("--model", default=None, help="reward model directory; default the trained export")
    ev.add_argument("--data", default=None, help="held-out JSONL (rated rows or preference rows)")
    ev.add_argument("--baseline", action="store_true", help="also evaluate the untrained head on the same backbone")
    ev.add_argument("--scorer", choices=["vllm", "transformers"], default=None, help="default reward.scorer")
    for p in (tr, ev):
        common(p)


def load(path: str | None, overrides: list[str]) -> tuple[Config, RewardConfig]:
    """The flywheel config and its reward section (``reward.*`` overrides applied either way)."""
    cfg = load_config(path, overrides)
    return cfg, cfg.reward


def _paths(cfg: Config, rc: RewardConfig) -> tuple[str, str]:
    """(export dir, eval output dir) for local run roots."""
    root = expand(cfg.run.root)
    if "://" in root and not rc.out_dir:
        raise FlywheelError("reward.out_dir must be set when run.root is remote")
    out = expand(rc.out_dir) if rc.out_dir else os.path.join(root, "reward", "model")
    return out, os.path.join(os.path.dirname(out.rstrip("/")), "eval")


def _backbone(cfg: Config, rc: RewardConfig) -> str:
    return rc.backbone or cfg.models.initial


def cmd_train(args) -> int:
    from flywheel.reward.drivers import train

    cfg, rc = load(args.config, args.overrides)
    out, _ = _paths(cfg, rc)
    out = expand(args.out) if args.out else out
    metrics = train(
        args.data or [rc.train_file], rc, cfg.train, _backbone(cfg, rc), out, cfg.run.cache_dir, tiny=cfg.models.tiny
    )
    brief = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and k != "history"}
    if cfg.tracking.enabled:
        from dataclasses import asdict

        from flywheel.tracking import log_reward_run

        params = {
            "data": ",".join(args.data or [rc.train_file]),
            "backbone": _backbone(cfg, rc),
            "out_dir": out,
            "trainable_layers": rc.trainable_layers,
            **{f"stage.{k}": v for k, v in asdict(rc.stage).items()},
        }
        numbers = {k: v for k, v in brief.items() if isinstance(v, (int, float))}
        log_reward_run(
            _tracking_uri(cfg), _experiment(cfg), "reward-train", params, numbers, artifact_location=_artifacts(cfg)
        )
    print(json.dumps(brief, indent=1, default=str))
    return 0


def cmd_eval(args) -> int:
    from flywheel.reward.drivers import evaluate_models, initial_reward_model

    cfg, rc = load(args.config, args.overrides)
    if args.scorer:
        rc.scorer = args.scorer
    out, eval_dir = _paths(cfg, rc)
    models = {"trained": expand(args.model) if args.model else out}
    if args.baseline:
        models["untrained_head"] = initial_reward_model(_backbone(cfg, rc), cfg.run.cache_dir, rc.seed, cfg.models.tiny)
    data = args.data or rc.heldout_file
    results = evaluate_models(models, data, rc, dict(cfg.judges.weights), cfg.engine, cfg.ray, eval_dir)
    if cfg.tracking.enabled:
        _log(cfg, rc, models, data, results, eval_dir)
    print(json.dumps(results, indent=1))
    return 0


def _log(cfg: Config, rc: RewardConfig, models: dict[str, str], data: str, results: dict, eval_dir: str) -> None:
    from flywheel.tracking import log_reward_run

    for name, metrics in results.items():
        log_reward_run(
            _tracking_uri(cfg),
            _experiment(cfg),
            f"reward-eval/{name}",
            {
                "model": models[name],
                "data": data,
                "scorer": rc.scorer,
                "hard_gap": rc.hard_gap,
                **{f"weights.{k}": v for k, v in cfg.judges.weights.items()},
            },
            metrics,
            [os.path.join(eval_dir, f"pairs-{name}.jsonl")],
            artifact_location=_artifacts(cfg),
        )


def _tracking_uri(cfg: Config) -> str:
    from flywheel.store import Store
    from flywheel.tracking import tracking_uri

    return tracking_uri(
        cfg.tracking, Store(cfg.run.root, cfg.run.storage_options), expand(cfg.run.cache_dir), cfg.run.name
    )


def _artifacts(cfg: Config) -> str | None:
    """Artifacts beside the run (as the round tracker keeps them) unless a tracking server is configured."""
    if cfg.tracking.uri:
        return None
    from flywheel.store import Store

    return Store(cfg.run.root, cfg.run.storage_options).uri("mlflow-artifacts")


def _experiment(cfg: Config) -> str:
    """Reward runs get their own experiment beside the rounds' (``<experiment>-reward``)."""
    return f"{cfg.tracking.experiment or cfg.run.name}-reward"


def run(args) -> int:
    """Dispatch ``flywheel reward <action>``."""
    return cmd_train(args) if args.action == "train" else cmd_eval(args)
