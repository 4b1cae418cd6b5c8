"""Stage ``evaluate``: the candidate, the current generator and the initial model on the held-out suites.

Suites (:class:`flywheel.config.EvalConfig`; built disjoint from the SDG, see :mod:`flywheel.evals.suites`):

* ``if``: verifiable instructions scored IFEval-style (:mod:`flywheel.evals.ifeval`): prompt and instruction
  level, strict and loose;
* ``math``: word problems with known answers (:func:`flywheel.judges.verifiers.verify`);
* ``reward``: the run's reward model on chat prompts: mean reward, each attribute's mean (verbosity watched:
  a longer answer is not a better one), answer length, and the candidate's win rate over the generator.

Every model answers greedily. A model's results are stored once per (model, suites, judge) under
``evals/<fingerprint>/results.json`` and reused: the initial model is evaluated once per run (round 0), and
the generator of round k is the candidate some earlier round already evaluated. The per-prompt results feed
the promotion gate (``stages/promote.py``).
"""

from __future__ import annotations

from statistics import fmean
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.evals import ifeval
from flywheel.judges.attributes import ATTRIBUTES, aggregate
from flywheel.judges.verifiers import verify
from flywheel.stages.asker import even_batches
from flywheel.stages.common import Context, log, read_prompt_file, run_once, section
from flywheel.stages.roles import chat_pool, engines, generator, initial_model, model_dir, reward_model
from flywheel.stages.training import stage_names
from flywheel.store import fingerprint

ROLES = ("candidate", "generator", "initial")


def candidate(ctx: Context) -> dict:
    """The round's trained model: the last training stage's export."""
    man = ctx.manifest(stage_names(ctx)[-1])
    return {
        "uri": man["outputs"]["model"]["uri"],
        "id": f"round-{ctx.round}:{man['stage']}:{man['fingerprint']}",
        "fingerprint": man["fingerprint"],
    }


def suite_prompts(ctx: Context) -> dict[str, list[dict]]:
    """The prompts of each suite, a fixed prefix of each file (the same every round)."""
    ec = ctx.cfg.eval
    suites = {
        "if": (ec.if_file, read_prompt_file(ec.if_file)[: ec.if_prompts or None]),
        "math": (ec.math_file, read_prompt_file(ec.math_file)[: ec.math_prompts or None]),
        "reward": (ec.heldout_file, read_prompt_file(ec.heldout_file)[: ec.max_prompts]),
    }
    for name, (path, prompts) in suites.items():
        if not prompts:  # the gate pairs per-prompt results: an empty suite can neither pass nor guard
            raise FlywheelError(f"eval: the {name} suite {path} has no prompts")
    return {name: prompts for name, (_, prompts) in suites.items()}


def suite_settings(ctx: Context) -> dict[str, Any]:
    """The evaluation settings that change results (the gate's settings do not: they belong to ``promote``)."""
    ec = section(ctx.cfg.eval)
    keep = ("if_file", "math_file", "if_prompts", "math_prompts", "heldout_file", "max_prompts", "max_tokens")
    return {k: ec[k] for k in keep}


def _answers(ctx: Context, model_uri: str, prompts: list[dict]) -> list[str]:
    pool = chat_pool(ctx, model_uri)
    sampling = {"temperature": 0.0, "max_tokens": ctx.cfg.eval.max_tokens}
    batches = even_batches(prompts, ctx.cfg.engine.batch_size, ctx.cfg.engine.num_actors)
    calls = [([p["messages"] for p in b], sampling, 1) for b in batches]
    return [t[0] for out in pool.run("chat", calls) for t in out["texts"]]


def _rewards(ctx: Context, rm_uri: str, prompts: list[dict], answers: list[str]) -> list[dict]:
    pool = engines(ctx).reward(model_dir(ctx, rm_uri, "reward model"))
    convs = [p["messages"] + [{"role": "assistant", "content": a}] for p, a in zip(prompts, answers)]
    (out,) = pool.run("score", [(convs,)])
    weights = dict(ctx.cfg.judges.weights)
    rows = []
    for p, a, raw in zip(prompts, answers, out["scores"]):
        scores = dict(zip(ATTRIBUTES, raw))
        rows.append({"id": p["id"], "reward": aggregate(scores, weights), "scores": scores, "chars": len(a)})
    return rows


def score_answers(suites: dict[str, list[dict]], answers: dict[str, list[str]]) -> dict[str, list[dict]]:
    """Per-prompt results of the ``if`` and ``math`` suites (pure: answers in, verdicts out)."""
    out: dict[str, list[dict]] = {"if": [], "math": []}
    for p, a in zip(suites["if"], answers["if"]):
        res = ifeval.score_response(a, p["meta"]["instructions"])
        out["if"].append({"id": p["id"], **res, "chars": len(a)})
    for p, a in zip(suites["math"], answers["math"]):
        out["math"].append({"id": p["id"], "correct": bool(verify(p["meta"], a)), "chars": len(a)})
    return out


def summarize(results: dict[str, list[dict]]) -> dict[str, float]:
    """One model's suite metrics: the four IF accuracies, math accuracy, reward and attribute means."""
    acc = ifeval.aggregate(results["if"])
    out = {
        k: float(acc[k])
        for k in ("prompt_level_strict", "prompt_level_loose", "instruction_level_strict", "instruction_level_loose")
    }
    out = {f"if_{k.replace('_level', '')}": v for k, v in out.items()}
    out["math_accuracy"] = fmean(float(r["correct"]) for r in results["math"])
    out["reward"] = fmean(r["reward"] for r in results["reward"])
    for attr in ATTRIBUTES:
        out[f"reward_{attr}"] = fmean(r["scores"][attr] for r in results["reward"])
    out["reward_chars"] = fmean(r["chars"] for r in results["reward"])
    return out


def win_rate(cand: list[dict], base: list[dict]) -> list[float]:
    """Per chat prompt: 1 when the judge prefers the candidate's answer, 0.5 on a tie, else 0."""
    return [
        1.0 if c["reward"] > b["reward"] else 0.5 if c["reward"] == b["reward"] else 0.0 for c, b in zip(cand, base)
    ]


def results_uri(ctx: Context, model: dict, rm: dict, suites: dict[str, list[dict]]) -> str:
    """Where one model's results are stored: keyed by (model, suites, settings, judge, weights)."""
    key = fingerprint(
        "eval",
        model["uri"],
        model["id"],
        rm["id"],
        suite_settings(ctx),
        {k: [p["id"] for p in v] for k, v in suites.items()},
        dict(ctx.cfg.judges.weights),
    )
    return ctx.store.uri("evals", key, "results.json")


def evaluate_models(
    ctx: Context, models: list[dict], rm: dict, suites: dict[str, list[dict]]
) -> list[tuple[str, dict]]:
    """``(results URI, results)`` of each model, computed once per (model, suites, judge) and stored.

    Every model not yet evaluated answers first, then the reward model scores them all: the chat and reward
    engines take turns on the same cores, so this order starts each kind once instead of once per model.
    """
    uris = [results_uri(ctx, m, rm, suites) for m in models]
    fresh: dict[str, tuple[dict, dict, list[str]]] = {}  # uri -> (model, results so far, reward-suite answers)
    for model, uri in zip(models, uris):
        if uri in fresh or ctx.store.exists(uri):
            continue
        log.info("evaluate: %s on %s", model["id"], ", ".join(f"{len(v)} {k}" for k, v in suites.items()))
        flat = [p for name in ("if", "math", "reward") for p in suites[name]]
        texts = _answers(ctx, model["uri"], flat)
        answers, i = {}, 0
        for name in ("if", "math", "reward"):
            answers[name], i = texts[i : i + len(suites[name])], i + len(suites[name])
        scored: dict[str, Any] = dict(score_answers(suites, answers))
        fresh[uri] = (model, scored, answers["reward"])
    for uri, (model, results, reward_answers) in fresh.items():
        results["reward"] = _rewards(ctx, rm["uri"], suites["reward"], reward_answers)
        results["model"] = {"uri": model["uri"], "id": model["id"]}
        ctx.store.write_json(uri, results)
    return [(uri, fresh[uri][1] if uri in fresh else ctx.store.read_json(uri)) for uri in uris]


def model_results(ctx: Context, model: dict, rm: dict, suites: dict[str, list[dict]]) -> tuple[str, dict]:
    """``(results URI, results)`` of one model (see :func:`evaluate_models`)."""
    return evaluate_models(ctx, [model], rm, suites)[0]


def run(ctx: Context) -> dict:
    roles = {"candidate": candidate(ctx), "generator": generator(ctx), "initial": initial_model(ctx)}
    rm = reward_model(ctx)

    def body(fp: str) -> tuple[dict, dict]:
        suites = suite_prompts(ctx)
        metrics: dict[str, float] = {f"{k}_prompts": float(len(v)) for k, v in suites.items()}
        outputs: dict[str, Any] = {}
        results: dict[str, dict] = {}
        for (role, model), (uri, results[role]) in zip(
            roles.items(), evaluate_models(ctx, list(roles.values()), rm, suites)
        ):
            outputs[role] = {"uri": uri, "model": model["id"]}
            metrics.update({f"{role}_{k}": v for k, v in summarize(results[role]).items()})
        metrics["win_rate"] = fmean(win_rate(results["candidate"]["reward"], results["generator"]["reward"]))
        log.info(
            "round %d evaluate: IF prompt-level %.3f (generator %.3f, initial %.3f), math %.3f (%.3f, %.3f), "
            "win rate %.3f",
            ctx.round,
            metrics["candidate_if_prompt_strict"],
            metrics["generator_if_prompt_strict"],
            metrics["initial_if_prompt_strict"],
            metrics["candidate_math_accuracy"],
            metrics["generator_math_accuracy"],
            metrics["initial_math_accuracy"],
            metrics["win_rate"],
        )
        return outputs, metrics

    fp_parts = [
        roles["candidate"]["fingerprint"],
        roles["generator"],
        roles["initial"],
        rm,
        suite_settings(ctx),
        dict(ctx.cfg.judges.weights),
        ctx.cfg.engine.max_model_len,
    ]
    return run_once(ctx, "evaluate", fp_parts, body, inputs={"candidate": roles["candidate"]["fingerprint"]})
