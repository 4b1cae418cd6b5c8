"""Training stages ``sft_code -> sft -> dpo -> rpo_1..rpo_n`` of the round's student, inside ONE Ray Train fit.

The student is ``models.student`` (weak-to-strong: the report aligns a stronger base model with the weaker
generator's data) or, by default, the generator itself.

Each stage still has its own fingerprint, checkpoint and manifest: rank 0 publishes a stage as soon as its
export is written, so a run killed during DPO restarts at DPO with SFT untouched.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from flywheel.config import to_dict
from flywheel.stages.common import Context, log, read_output
from flywheel.stages.roles import engines, model_dir, student
from flywheel.store import Store, fingerprint, round_dir


@dataclass
class Planned:
    name: str
    kind: str
    fp: str
    uri: str  # store URI of the exported model
    out_dir: str  # local directory the trainer writes


def stage_names(ctx: Context) -> list[str]:
    return ["sft_code", "sft", "dpo"] + [f"rpo_{i}" for i in range(1, ctx.cfg.train.rpo.iterations + 1)]


def _out_dir(ctx: Context, stage: str, fp: str) -> tuple[str, str]:
    uri = ctx.store.uri(round_dir(ctx.round), stage, fp, "model")
    local = (
        ctx.store.path(uri)
        if ctx.store.is_local
        else os.path.join(ctx.cache_dir, "train", round_dir(ctx.round), stage, fp, "model")
    )
    return uri, local


def publish(store_root: str, storage_options: dict, round_idx: int, plan: dict, job, metrics: dict) -> None:
    """Called on rank 0 after a job's export: upload (remote stores) and write the stage manifest."""
    store = Store(store_root, storage_options)
    p: Planned = plan[job.name]
    if not store.is_local:
        store.put_dir(p.out_dir, p.uri)
    small = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    store.commit(round_idx, p.name, p.fp, {"model": {"uri": p.uri}}, metrics=small)


def _write_local_jsonl(path: str, rows: list[dict]) -> str:
    import json

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def write_round_data(ctx: Context, dman: dict) -> dict[str, str]:
    """The round's datasets as local JSONL files for the trainer: ``sft_code``, ``sft``, ``pref`` -> path."""
    data_dir = os.path.join(ctx.cache_dir, "data", ctx.cfg.run.name, round_dir(ctx.round), dman["fingerprint"])
    names = {"sft_code": "sft_code", "sft": "sft_general", "pref": "preference"}
    return {
        key: _write_local_jsonl(f"{data_dir}/{out}.jsonl", list(read_output(ctx, dman, out)))
        for key, out in names.items()
    }


def plan_jobs(
    ctx: Context, start: dict, data_fp: str, files: dict[str, str], has_code: bool
) -> tuple[dict[str, Planned], list]:
    """Chain the round's stages from ``start`` (the model they align); skip what is done.

    Returns the planned stages (name -> :class:`Planned`) and the jobs still to train, in order. A round
    without code prompts publishes ``sft_code`` as a pass-through of ``start``.
    """
    from flywheel.engines.ray_train import TrainJob

    tc = ctx.cfg.train
    common = {k: v for k, v in to_dict(tc).items() if k not in ("sft_code", "sft_general", "dpo", "rpo")}
    stages = [
        ("sft_code", "sft", tc.sft_code, files["sft_code"]),
        ("sft", "sft", tc.sft_general, files["sft"]),
        ("dpo", "dpo", tc.dpo, files["pref"]),
    ]
    stages += [(f"rpo_{i}", "rpo", tc.rpo, files["pref"]) for i in range(1, tc.rpo.iterations + 1)]
    plan: dict[str, Planned] = {}
    jobs, prev_fp, prev_model = [], fingerprint(data_fp, start), start["uri"]
    prev_local = None  # local dir of the previous stage's model if it is trained in this fit
    for name, kind, scfg, data in stages:
        fp = fingerprint(name, prev_fp, common, to_dict(scfg))
        if name == "sft_code" and not has_code:  # no code prompts this round: general SFT starts from `start`
            if not ctx.store.is_done(ctx.round, name, fp):
                ctx.store.commit(
                    ctx.round, name, fp, {"model": {"uri": prev_model}}, metrics={"rows": 0, "passthrough": 1}
                )
            prev_fp = fp
            continue
        uri, out_dir = _out_dir(ctx, name, fp)
        plan[name] = Planned(name, kind, fp, uri, out_dir)
        init_dir = prev_local or model_dir(ctx, prev_model, "generator")
        # DPO refers to the SFT model it starts from; each RPO iteration to the model it starts from.
        ref_dir = init_dir if kind in ("dpo", "rpo") else None
        if ctx.store.is_done(ctx.round, name, fp):
            log.info("round %d: %s already done, skipping", ctx.round, name)
            prev_local = None
        else:
            jobs.append(
                TrainJob(
                    name=name,
                    kind=kind,
                    init_model=init_dir,
                    ref_model=ref_dir,
                    data=[data],
                    replay_data=[files["sft_code"]] if name == "sft" and has_code else [],
                    out_dir=out_dir,
                    stage=scfg,
                    lora=tc.lora if tc.lora.enabled else None,
                    ref_logps=os.path.join(os.path.dirname(out_dir), "ref_logps.safetensors") if ref_dir else None,
                )
            )
            prev_local = out_dir
        prev_fp, prev_model = fp, uri
    return plan, jobs


def run(ctx: Context) -> dict | None:
    """Plan the chain, skip what is done, train the rest in one fit. Returns the last stage's manifest."""
    from flywheel.engines.ray_train import run_training

    dman = ctx.manifest("datasets")
    files = write_round_data(ctx, dman)
    has_code = os.path.getsize(files["sft_code"]) > 0
    plan, jobs = plan_jobs(ctx, student(ctx), dman["fingerprint"], files, has_code)
    if jobs:
        engines(ctx).release()  # training needs the cores the engines hold
        pub = functools.partial(publish, ctx.store.root, ctx.store.storage_options, ctx.round, plan)
        log.info("round %d: training %s", ctx.round, " -> ".join(j.name for j in jobs))
        run_training(jobs, ctx.cfg.train, os.path.join(ctx.cache_dir, "ray-train"), publish=pub)
    last = None
    for name in plan:
        man = ctx.store.manifest(ctx.round, name)
        if ctx.tracker is not None and man is not None and any(j.name == name for j in jobs):
            ctx.tracker.log_stage(ctx.round, name, man)
        last = man
    return last
