"""The evaluate stage's scoring and the promotion gate over paired suites (pure parts, no engines)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flywheel.config import load_config
from flywheel.errors import FlywheelError
from flywheel.stages.evaluate import score_answers, summarize, win_rate
from flywheel.stages.promote import decide, paired_suites

LOWER = {"kind": "all_lowercase", "params": {}}


def _suites():
    return {
        "if": [{"id": "i1", "meta": {"instructions": [LOWER]}}, {"id": "i2", "meta": {"instructions": [LOWER]}}],
        "math": [{"id": "m1", "meta": {"answer": "12"}}, {"id": "m2", "meta": {"answer": "7"}}],
    }


def test_score_answers_and_summary_by_hand():
    res = score_answers(_suites(), {"if": ["all lower here", "Not Lower"], "math": ["so... Answer: 12", "Answer: 8"]})
    assert [r["prompt_strict"] for r in res["if"]] == [True, False]
    assert [r["correct"] for r in res["math"]] == [True, False]
    attrs = {"helpfulness": 1.0, "correctness": 1.0, "coherence": 1.0, "complexity": 1.0, "verbosity": 3.0}
    res["reward"] = [
        {"id": "c1", "reward": 2.0, "scores": attrs, "chars": 10},
        {"id": "c2", "reward": 4.0, "scores": attrs, "chars": 30},
    ]
    s = summarize(res)
    assert s["if_prompt_strict"] == 0.5 and s["math_accuracy"] == 0.5
    assert s["reward"] == 3.0 and s["reward_verbosity"] == 3.0 and s["reward_chars"] == 20.0


def test_win_rate_counts_ties_half():
    c = [{"reward": 1.0}, {"reward": 2.0}, {"reward": 0.0}]
    b = [{"reward": 0.0}, {"reward": 2.0}, {"reward": 1.0}]
    assert win_rate(c, b) == [1.0, 0.5, 0.0]


def _results(if_pass: list[int], math_ok: list[int], rewards: list[float]) -> dict:
    return {
        "if": [{"id": f"i{k}", "prompt_strict": bool(v)} for k, v in enumerate(if_pass)],
        "math": [{"id": f"m{k}", "correct": bool(v)} for k, v in enumerate(math_ok)],
        "reward": [{"id": f"c{k}", "reward": v} for k, v in enumerate(rewards)],
    }


def _eval(**over):
    base = {
        "primary": "if",
        "tolerance": 0.02,
        "confidence": 0.95,
        "margin": 0.0,
        "resamples": 500,
        "always_promote": False,
        "guard": "confident",
    }
    return SimpleNamespace(**{**base, **over})


def test_a_clear_improvement_on_many_prompts_is_promoted():
    n = 60
    cand = _results([1] * 30 + [0] * 30, [1] * 10 + [0] * 50, [1.0] * n)
    base = _results([0] * 60, [1] * 10 + [0] * 50, [1.0] * n)
    promoted, reason, stats = decide(paired_suites(cand, base), _eval())
    assert promoted, reason
    assert stats["if"]["delta"] == pytest.approx(0.5) and stats["if"]["low"] > 0
    assert reason.startswith("promote: if (primary)")


def test_noise_cannot_pass_few_prompts_fail_the_sign_test():
    # 3 of 3 prompts better: the percentile interval clears 0, but the sign test p = 0.25 does not
    cand, base = _results([1, 1, 1], [0, 0, 0], [1.0] * 3), _results([0, 0, 0], [0, 0, 0], [1.0] * 3)
    promoted, reason, stats = decide(paired_suites(cand, base), _eval())
    assert stats["if"]["low"] > 0 and not promoted
    assert "sign test p=0.25" in reason


def test_a_regressing_guard_suite_blocks_promotion():
    n = 60
    cand = _results([1] * 30 + [0] * 30, [0] * n, [1.0] * n)
    base = _results([0] * n, [1] * 12 + [0] * 48, [1.0] * n)  # math drops by 0.2
    promoted, reason, stats = decide(paired_suites(cand, base), _eval())
    assert not promoted and not stats["math"]["ok"] and "math (guard)" in reason


def test_a_verbose_answer_the_judge_prefers_less_is_a_reward_regression():
    n = 60
    cand = _results([1] * 30 + [0] * 30, [0] * n, [0.0] * n)
    base = _results([0] * n, [0] * n, [1.0] * n)
    promoted, _, stats = decide(paired_suites(cand, base), _eval())
    assert stats["reward"]["delta"] == pytest.approx(-0.5) and not promoted


def test_margin_and_always_promote():
    n = 60
    cand = _results([1] * 12 + [0] * 48, [0] * n, [1.0] * n)
    base = _results([0] * n, [0] * n, [1.0] * n)
    assert decide(paired_suites(cand, base), _eval())[0]
    assert not decide(paired_suites(cand, base), _eval(margin=0.3))[0]  # +0.2 does not clear a 0.3 margin
    promoted, reason, _ = decide(paired_suites(base, cand), _eval(always_promote=True))
    assert promoted and reason.startswith("promote (eval.always_promote; the gate said: hold:")


def test_unaligned_results_are_refused():
    cand, base = _results([1, 0], [1], [1.0]), _results([1, 0], [1], [1.0])
    base["if"][1]["id"] = "other"
    with pytest.raises(ValueError, match="suite if"):
        paired_suites(cand, base)


@pytest.mark.parametrize(
    "override, culprit",
    [
        ("eval.primary=length", "eval.primary"),
        ("eval.confidence=1.5", "eval.confidence"),
        ("eval.margin=nan", "eval.margin"),
        ("eval.tolerance=-1", "eval.tolerance"),
        ("eval.guard=median", "eval.guard"),
        ("eval.max_prompts=0", "eval.max_prompts"),
        ("models.reward=untrainedd", "models.reward"),
    ],
)
def test_bad_eval_settings_name_the_key(override, culprit):
    with pytest.raises(FlywheelError, match=culprit):
        load_config(None, [override])


def test_an_empty_suite_file_is_one_line_naming_it(tmp_path):
    import pytest

    from flywheel.config import load_config
    from flywheel.errors import FlywheelError
    from flywheel.stages.common import Context
    from flywheel.stages.evaluate import suite_prompts
    from flywheel.store import Store

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cfg = load_config(None, [f"run.root={tmp_path / 'run'}", f"eval.math_file={empty}"])
    ctx = Context(cfg=cfg, store=Store(str(tmp_path / "run")), round=1)
    with pytest.raises(FlywheelError, match=r"eval: the math suite .*empty\.jsonl has no prompts"):
        suite_prompts(ctx)
    assert len(suite_prompts(Context(cfg=load_config(None), store=ctx.store, round=1))["if"]) >= 300
