"""Which model plays which part of a round: the initial model, the reward model, this round's generator.

Models are named by URI (store URI or local path) and resolved to checked local directories; the engine
pools that serve them live in :class:`flywheel.engines.cache.EngineCache`, one per process.
"""

from __future__ import annotations

import os

from flywheel.config import round_seed
from flywheel.engines.cache import EngineCache
from flywheel.errors import FlywheelError
from flywheel.models import build_tiny_causal_lm, check_model_dir, pull_smollm2, smollm2_tokenizer
from flywheel.reward.model import build_reward_model
from flywheel.stages.common import Context
from flywheel.store import fingerprint


def engines(ctx: Context) -> EngineCache:
    """The process-wide engine pools (created on first use)."""
    if ctx.engines is None:
        ctx.engines = EngineCache(ctx.cfg.engine, ctx.cfg.ray, ctx.cfg.run.seed)
    return ctx.engines


def sampling_seed(ctx: Context) -> int:
    """The seed of this round's chat engines: the run's seed offset by the round (:func:`round_seed`), so a
    round whose generator was held samples anew instead of repeating the round before."""
    return round_seed(ctx.cfg.run.seed, ctx.round)


def chat_pool(ctx: Context, uri: str, what: str = "model"):
    """The chat engines on the model at ``uri``, sampling with this round's seed (:func:`sampling_seed`)."""
    return engines(ctx).chat(model_dir(ctx, uri, what), seed=sampling_seed(ctx))


def model_dir(ctx: Context, uri: str, what: str = "model") -> str:
    """A local directory for a model URI (store URI or local path), checked."""
    if "://" in uri:
        path = ctx.store.local_dir(uri, os.path.join(ctx.cache_dir, "store"))
    else:
        path = os.path.expanduser(uri)
    return check_model_dir(path, what)


def _bootstrap(ctx: Context, name: str, build) -> str:
    uri = ctx.store.uri("models", name)
    if ctx.store.dir_problem(uri) is not None:  # never built, or its upload was killed half-way: (re)build
        if ctx.store.is_local:
            build(ctx.store.path(uri))
        else:
            local = os.path.join(ctx.cache_dir, "build", name)
            build(local)
            ctx.store.put_dir(local, uri)
    return uri


def _causal_lm(ctx: Context, spec: str, what: str, tiny, name: str, seed: int) -> str:
    """URI of a policy named by ``spec``: ``smollm2`` (pulled once), ``tiny`` (built from ``tiny``), or a path/URI."""
    if spec == "smollm2":
        return pull_smollm2(ctx.cache_dir)
    if spec == "tiny":
        tok = smollm2_tokenizer(ctx.cache_dir)
        return _bootstrap(
            ctx,
            f"{name}-{tiny.arch}-{fingerprint(tiny.__dict__)}",
            lambda out: build_tiny_causal_lm(out, tok, tiny, seed=seed),
        )
    model_dir(ctx, spec, what)
    return spec


def initial_model(ctx: Context) -> dict:
    """The round-1 generator: ``{"uri", "id"}``."""
    cfg = ctx.cfg
    uri = _causal_lm(ctx, cfg.models.initial, "models.initial", cfg.models.tiny, "tiny", cfg.run.seed)
    return {"uri": uri, "id": f"initial:{os.path.basename(uri.rstrip('/'))}"}


RUN_LEVEL = 0  # the store's round 0 holds the run-level stages (``reward``), done once before round 1


def reward_model(ctx: Context) -> dict:
    """The judge of every round, ``{"uri", "id"}``: what the run-level ``reward`` stage published."""
    man = ctx.store.manifest(RUN_LEVEL, "reward")
    if man is None:
        raise FlywheelError("the run's reward stage has not run yet (`flywheel iterate` runs it before round 1)")
    uri = man["outputs"]["model"]["uri"]
    return {"uri": uri, "id": f"reward:{man['outputs']['judge']['spec']}:{man['fingerprint']}"}


def untrained_reward_model(ctx: Context, spec: str) -> str:
    """An untrained judge, only where a profile asks for one: ``tiny`` (random) or the initial backbone + fresh head."""
    if spec == "tiny":
        tok = smollm2_tokenizer(ctx.cache_dir)
        tiny = ctx.cfg.models.tiny
        uri = _bootstrap(
            ctx,
            f"reward-tiny-{fingerprint(tiny.__dict__)}",
            lambda out: build_reward_model(out, None, tok, tiny=_llama(tiny), seed=ctx.cfg.run.seed),
        )
    else:  # untrained / from-initial
        init = initial_model(ctx)
        backbone = model_dir(ctx, init["uri"], "models.initial")
        uri = _bootstrap(
            ctx,
            f"reward-from-{os.path.basename(init['uri'].rstrip('/'))}",
            lambda out: build_reward_model(out, backbone, backbone, seed=ctx.cfg.run.seed),
        )
    return uri


def _llama(tiny):
    from dataclasses import replace

    return replace(tiny, arch="llama")


def student(ctx: Context) -> dict:
    """The model this round aligns, ``{"uri", "id"}``: ``models.student``, or the generator when it is ""."""
    cfg = ctx.cfg
    if not cfg.models.student:
        return generator(ctx)
    uri = _causal_lm(
        ctx, cfg.models.student, "models.student", cfg.models.tiny_student, "student-tiny", cfg.run.seed + 1
    )
    return {"uri": uri, "id": f"student:{os.path.basename(uri.rstrip('/'))}"}


def check_models(ctx: Context) -> None:
    """Resolve the models a run names (initial, an explicit student) so a bad one stops it before any stage runs."""
    initial_model(ctx)
    if ctx.cfg.models.student:
        student(ctx)


def generator(ctx: Context) -> dict:
    """The generator for this round: the initial model in round 1, else what round-1 promotion decided."""
    if ctx.round == 1:
        return initial_model(ctx)
    prev = ctx.store.manifest(ctx.round - 1, "promote")
    if prev is None:
        raise FlywheelError(
            f"round {ctx.round - 1} has not finished (no promotion); run `flywheel iterate --round {ctx.round - 1}` first"
        )
    return prev["outputs"]["generator"]
