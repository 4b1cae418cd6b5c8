"""Stage ``reward`` (run level, before round 1): the judge every round uses.

Nemotron-4 340B (sec. 3.1): a backbone with a 5-attribute regression head trained on HelpSteer2; the scalar
reward is the weighted sum of the attributes. With ``models.reward: trained`` (the default) this stage trains
that model with the reward trainer (:func:`flywheel.reward.drivers.train`: Ray Train + DeepSpeed) on
``reward.train_file``; with a path it takes the given model; an untrained head (``untrained``, ``tiny``) is
used only where a profile names it. In every case it then measures the judge's pairwise accuracy on
``reward.heldout_file`` by category (reasoning / chat / hard), so a run always shows how much its judge can
be trusted, and publishes model + metrics under ``round-000/reward`` with a manifest like any stage.
"""

from __future__ import annotations

import os

from flywheel.config import to_dict
from flywheel.stages.common import Context, run_once
from flywheel.stages.roles import RUN_LEVEL, engines, model_dir, untrained_reward_model
from flywheel.store import round_dir
from flywheel.train.job import file_digest


def _train(ctx: Context, fp: str) -> tuple[str, dict]:
    """Train the reward model; returns its store URI and the trainer's metrics."""
    from flywheel.reward.drivers import train

    rc, cfg = ctx.cfg.reward, ctx.cfg
    uri = ctx.store.uri(round_dir(RUN_LEVEL), "reward", fp, "model")
    out = ctx.store.path(uri) if ctx.store.is_local else os.path.join(ctx.cache_dir, "reward", fp, "model")
    engines(ctx).release()  # training needs the cores the engines hold
    metrics = train([rc.train_file], rc, cfg.train, _backbone(ctx), out, ctx.cache_dir, tiny=cfg.models.tiny)
    if not ctx.store.is_local:
        ctx.store.put_dir(out, uri)
    return uri, {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "history"}


def _backbone(ctx: Context) -> str:
    return ctx.cfg.reward.backbone or ctx.cfg.models.initial


def run(ctx: Context) -> dict:
    """Train (or take) the reward model and publish it with its held-out pairwise accuracy."""
    from flywheel.reward.drivers import data_path

    cfg, rc = ctx.cfg, ctx.cfg.reward
    spec = cfg.models.reward
    # the data by content: a changed file (or dataset directory, or s3 object) retrains the judge
    data = [
        file_digest(data_path(f, ctx.cache_dir, split=s))
        for f, s in ((rc.train_file, "train"), (rc.heldout_file, "validation"))
    ]
    fp_parts = [spec, to_dict(rc), data, dict(cfg.judges.weights)]
    if spec == "trained":
        fp_parts += [
            _backbone(ctx),
            to_dict(cfg.models.tiny),
            {k: v for k, v in to_dict(cfg.train).items() if k in ("num_workers", "zero_stage", "bf16")},
        ]

    def body(fp: str) -> tuple[dict, dict]:
        from flywheel.reward.drivers import evaluate_models

        metrics: dict = {}
        if spec == "trained":
            uri, fit = _train(ctx, fp)
            metrics.update({f"train_{k}": v for k, v in fit.items()})
        elif spec in ("untrained", "from-initial", "tiny"):
            uri = untrained_reward_model(ctx, spec)
        else:
            uri = spec
        local = model_dir(ctx, uri, "reward model")
        engines(ctx).release()
        eval_dir = os.path.join(ctx.cache_dir, "reward-eval", cfg.run.name, fp)
        acc = evaluate_models(
            {"judge": local}, rc.heldout_file, rc, dict(cfg.judges.weights), cfg.engine, cfg.ray, eval_dir
        )["judge"]
        metrics.update({k: v for k, v in acc.items() if isinstance(v, (int, float))})
        metrics["trained"] = int(spec == "trained" or spec not in ("untrained", "from-initial", "tiny"))
        return {"model": {"uri": uri}, "judge": {"spec": spec, "trained": bool(metrics["trained"])}}, metrics

    return run_once(ctx, "reward", fp_parts, body)
