"""Promotion decision and evaluation summary, with the arithmetic written out."""

import pytest

from flywheel.evals.gate import decide, summarize


def _rows(rewards, verified=None):
    verified = verified or [None] * len(rewards)
    return [{"reward": r, "verified": v} for r, v in zip(rewards, verified)]


def test_summarize_means_and_win_rate_with_ties_as_half():
    cand = _rows([1.0, 0.5, 0.2, 0.0], [True, False, None, True])
    gen = _rows([0.5, 0.5, 0.4, -1.0], [False, False, None, None])
    m = summarize(cand, gen)
    assert m["candidate_reward"] == pytest.approx((1.0 + 0.5 + 0.2 + 0.0) / 4)  # 0.425
    assert m["generator_reward"] == pytest.approx((0.5 + 0.5 + 0.4 - 1.0) / 4)  # 0.1
    assert m["win_rate"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)  # 0.625
    assert m["candidate_verified_pass"] == pytest.approx(2 / 3)
    assert m["generator_verified_pass"] == pytest.approx(0 / 2)


def test_summarize_rejects_misaligned():
    with pytest.raises(ValueError):
        summarize(_rows([1.0]), _rows([1.0, 2.0]))


def test_decide_mean_reward_margin_is_strict():
    m = {"candidate_reward": 0.425, "generator_reward": 0.1, "win_rate": 0.625}
    assert decide(m, "mean_reward", 0.3)[0] is True  # 0.325 > 0.3
    assert decide(m, "mean_reward", 0.325)[0] is False  # not strictly greater
    ok, reason = decide(m, "win_rate", 0.1)  # 0.125 > 0.1
    assert ok and "win_rate delta +0.1250" in reason
    assert decide(m, "win_rate", 0.2)[0] is False


def test_decide_keeps_generator_when_candidate_is_worse():
    assert decide({"candidate_reward": 0.1, "generator_reward": 0.2, "win_rate": 0.3}, "mean_reward", 0.0)[0] is False
