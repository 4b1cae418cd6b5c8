"""Paired bootstrap, sign test and the promotion gate, against expectations worked out by hand."""

from __future__ import annotations

import math
import time

import pytest

from flywheel.errors import FlywheelError
from flywheel.evals.stats import GUARDS, gate, paired_bootstrap, sign_test

# ---- sign test -----------------------------------------------------------------------------------


def _pairs(wins: int, losses: int, ties: int = 0) -> tuple[list[float], list[float]]:
    a = [1.0] * wins + [0.0] * losses + [0.5] * ties
    b = [0.0] * wins + [1.0] * losses + [0.5] * ties
    return a, b


def test_sign_test_nine_wins_one_loss():
    # n = 10, k = 1: p = 2 * (C(10,0) + C(10,1)) / 2**10 = 2 * 11 / 1024
    out = sign_test(*_pairs(9, 1))
    assert (out["wins"], out["losses"], out["ties"]) == (9, 1, 0)
    assert out["p_value"] == pytest.approx(22 / 1024)


def test_sign_test_five_wins_two_losses_is_symmetric():
    # n = 7, k = 2: p = 2 * (1 + 7 + 21) / 128 = 58 / 128, whichever side wins
    assert sign_test(*_pairs(5, 2))["p_value"] == pytest.approx(58 / 128)
    assert sign_test(*_pairs(2, 5))["p_value"] == pytest.approx(58 / 128)


def test_sign_test_drops_ties_and_caps_at_one():
    out = sign_test(*_pairs(2, 0, ties=3))
    assert out["ties"] == 3
    assert out["p_value"] == pytest.approx(2 * 1 / 4)  # n = 2, k = 0
    assert sign_test(*_pairs(3, 3))["p_value"] == 1.0  # 2 * 42/64 > 1 is capped


def test_sign_test_all_ties_gives_p_one():
    out = sign_test([0.3, 0.7], [0.3, 0.7])
    assert out == {"wins": 0, "losses": 0, "ties": 2, "p_value": 1.0}


def test_sign_test_ten_straight_wins():
    assert sign_test(*_pairs(10, 0))["p_value"] == pytest.approx(2 / 1024)


# ---- bootstrap -----------------------------------------------------------------------------------


def test_bootstrap_identical_inputs_gives_zero_interval():
    scores = [0.0, 1.0, 0.5, 1.0, 0.25]
    out = paired_bootstrap(scores, list(scores))
    assert out["delta"] == 0.0
    assert (out["low"], out["high"]) == (0.0, 0.0)
    assert out["p_value"] == 1.0  # every resampled delta is <= 0
    assert out["n"] == 5 and out["resamples"] == 2000


def test_bootstrap_constant_shift_has_a_point_interval():
    b = [0.1, 0.4, 0.2, 0.9]
    a = [x + 0.5 for x in b]
    out = paired_bootstrap(a, b, resamples=200)
    assert out["delta"] == pytest.approx(0.5)
    assert out["low"] == pytest.approx(0.5) and out["high"] == pytest.approx(0.5)
    assert out["p_value"] == 0.0
    assert out["mean_a"] - out["mean_b"] == pytest.approx(0.5)


def test_bootstrap_two_prompt_distribution():
    # Differences [1, 0]: a resample mean is 0 with probability 1/4, 1/2 with 1/2, 1 with 1/4.
    out = paired_bootstrap([1.0, 0.0], [0.0, 0.0], resamples=4000, confidence=0.9, seed=3)
    assert out["delta"] == 0.5
    assert out["p_value"] == pytest.approx(0.25, abs=0.03)  # sd ~ 0.007
    # 5% and 95% quantiles of that distribution are 0 and 1.
    assert (out["low"], out["high"]) == (0.0, 1.0)


def test_bootstrap_is_deterministic_given_seed():
    a = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    b = [0, 0, 1, 0, 0, 1, 1, 0, 1, 0]
    first, again = paired_bootstrap(a, b, seed=7), paired_bootstrap(a, b, seed=7)
    assert first == again
    assert (
        paired_bootstrap(a, b, seed=8)["low"] != first["low"]
        or paired_bootstrap(a, b, seed=8)["p_value"] != first["p_value"]
    )
    assert first["low"] <= first["delta"] <= first["high"]
    assert first["delta"] == pytest.approx((7 - 4) / 10)


def test_bootstrap_wider_confidence_gives_wider_interval():
    a = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1]
    b = [0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0]
    narrow = paired_bootstrap(a, b, confidence=0.5)
    wide = paired_bootstrap(a, b, confidence=0.99)
    assert wide["low"] <= narrow["low"] and wide["high"] >= narrow["high"]
    assert wide["high"] - wide["low"] > narrow["high"] - narrow["low"]


def test_bootstrap_is_fast_at_a_thousand_prompts():
    a = [(i * 37 % 101) / 100 for i in range(1000)]
    b = [(i * 53 % 97) / 96 for i in range(1000)]
    start = time.perf_counter()
    paired_bootstrap(a, b, resamples=2000)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "a, b, kwargs",
    [
        ([1.0, 2.0], [1.0], {}),
        ([], [], {}),
        ([1.0, math.nan], [1.0, 1.0], {}),
        ([1.0, math.inf], [1.0, 1.0], {}),
        ([1.0, "x"], [1.0, 1.0], {}),
        ("10", "10", {}),
        ([1.0], [0.0], {"confidence": 1.0}),
        ([1.0], [0.0], {"confidence": 0.0}),
        ([1.0], [0.0], {"resamples": 0}),
    ],
)
def test_bootstrap_rejects_bad_input(a, b, kwargs):
    with pytest.raises(FlywheelError):
        paired_bootstrap(a, b, **kwargs)


def test_sign_test_rejects_unaligned():
    with pytest.raises(FlywheelError, match="same prompts"):
        sign_test([1, 0, 1], [1, 0])


# ---- gate ----------------------------------------------------------------------------------------


def _suite(cand, base, higher=True):
    return {"candidate": cand, "baseline": base, "higher_is_better": higher}


CLEAR_WIN = _suite([1] * 90 + [0] * 10, [1] * 50 + [0] * 50)  # +0.4 on 100 prompts


def test_gate_promotes_a_clearly_better_candidate():
    ok, reason, stats = gate(
        {"if": CLEAR_WIN, "math": _suite([1, 0, 1, 1], [1, 0, 1, 1])}, primary="if", tolerance=0.02, confidence=0.95
    )
    assert ok is True
    assert reason.startswith("promote: ")
    assert "if (primary) +0.4000" in reason and "math (guard) +0.0000" in reason
    assert "\n" not in reason
    assert stats["if"]["low"] > 0 and stats["if"]["role"] == "primary"
    assert stats["if"]["wins"] == 40 and stats["if"]["losses"] == 0
    assert stats["math"]["ok"] and stats["math"]["role"] == "guard"


def test_gate_holds_a_noisy_tiny_improvement_on_few_prompts():
    # Mean delta +1/6 on six prompts, but two of them got worse: the interval spans zero.
    noisy = _suite([1, 0, 1, 0, 1, 1], [0, 1, 0, 1, 0, 1])
    ok, reason, stats = gate({"if": noisy}, primary="if", tolerance=0.0, confidence=0.95)
    assert stats["if"]["delta"] == pytest.approx(1 / 6)
    assert stats["if"]["low"] <= 0 < stats["if"]["high"]
    assert ok is False
    assert reason.startswith("hold: ") and "does not clear 0" in reason


def test_gate_holds_when_nothing_changed():
    same = _suite([1, 0, 1, 0], [1, 0, 1, 0])
    ok, _, stats = gate({"if": same}, primary="if", tolerance=0.1, confidence=0.95)
    assert ok is False and stats["if"]["low"] == 0.0


def test_gate_blocks_on_a_secondary_regression_beyond_tolerance():
    # math drops from 20/40 to 14/40 correct: delta -0.15 < -0.05, 6 prompts lost and none won
    math_suite = _suite([1] * 14 + [0] * 26, [1] * 20 + [0] * 20)
    ok, reason, stats = gate({"if": CLEAR_WIN, "math": math_suite}, primary="if", tolerance=0.05, confidence=0.95)
    assert stats["if"]["ok"] is True
    assert stats["math"]["delta"] == pytest.approx(-0.15)
    assert stats["math"]["ok"] is False and ok is False
    assert "math (guard) -0.1500" in reason and "regresses beyond tolerance 0.05" in reason


def test_a_guard_regression_noise_can_explain_holds_only_with_guard_mean():
    # math at its floor: 1 of 150 problems against 5 -- a mean of -0.027 past the 0.02 tolerance, but 2 prompts
    # won and 6 lost: the interval reaches 0, so the default guard does not hold the candidate on it
    math_suite = _suite([1, 1] + [0] * 148, [0, 0] + [1] * 6 + [0] * 142)
    ok, reason, stats = gate({"if": CLEAR_WIN, "math": math_suite}, primary="if", tolerance=0.02, confidence=0.95)
    assert stats["math"]["delta"] == pytest.approx(-4 / 150) and stats["math"]["high"] >= 0
    assert ok is True and stats["math"]["ok"] is True
    assert "math (guard) -0.0267" in reason and "not a regression at 95%" in reason
    held, reason, _ = gate(
        {"if": CLEAR_WIN, "math": math_suite}, primary="if", tolerance=0.02, confidence=0.95, guard="mean"
    )
    assert held is False and "regresses beyond tolerance 0.02" in reason
    # a regression the interval shows holds under both
    shown = _suite([0] * 12 + [0] * 138, [1] * 12 + [0] * 138)
    for guard in GUARDS:
        assert gate({"if": CLEAR_WIN, "math": shown}, "if", 0.02, 0.95, guard=guard)[0] is False
    with pytest.raises(FlywheelError, match="guard"):
        gate({"if": CLEAR_WIN}, "if", 0.02, 0.95, guard="median")


def test_gate_allows_a_secondary_regression_within_tolerance():
    math_suite = _suite([1] * 9 + [0] * 11, [1] * 10 + [0] * 10)  # -0.05
    ok, _, stats = gate({"if": CLEAR_WIN, "math": math_suite}, primary="if", tolerance=0.05, confidence=0.95)
    assert stats["math"]["delta"] == pytest.approx(-0.05) and ok is True


def test_gate_signs_lower_is_better_suites():
    # Candidate answers are shorter on a suite where lower is better: that is an improvement.
    length = _suite([100.0] * 30, [130.0] * 30, higher=False)
    ok, reason, stats = gate({"length": length}, primary="length", tolerance=0.0, confidence=0.9)
    assert stats["length"]["delta"] == pytest.approx(30.0)
    assert stats["length"]["mean_candidate"] == 100.0 and stats["length"]["wins"] == 30
    assert ok is True and "+30.0000" in reason
    worse = _suite([130.0] * 30, [100.0] * 30, higher=False)
    assert gate({"if": CLEAR_WIN, "length": worse}, "if", 5.0, 0.9)[0] is False


@pytest.mark.parametrize(
    "suites, primary, tol, conf, match",
    [
        ({}, "if", 0.0, 0.95, "no suites"),
        ({"if": CLEAR_WIN}, "math", 0.0, 0.95, "primary suite 'math'"),
        ({"if": _suite([1, 0], [1])}, "if", 0.0, 0.95, "same prompts"),
        ({"if": _suite([], [])}, "if", 0.0, 0.95, "no scores"),
        ({"if": _suite([1, math.nan], [1, 0])}, "if", 0.0, 0.95, "finite"),
        ({"if": CLEAR_WIN}, "if", -0.01, 0.95, "tolerance"),
        ({"if": CLEAR_WIN}, "if", math.nan, 0.95, "tolerance"),
        ({"if": CLEAR_WIN}, "if", 0.0, 1.0, "confidence"),
        ({"if": CLEAR_WIN}, "if", 0.0, 0.0, "confidence"),
        ({"if": {"candidate": [1]}}, "if", 0.0, 0.95, "'candidate' and 'baseline'"),
        ({"if": {**CLEAR_WIN, "higher_is_better": "yes"}}, "if", 0.0, 0.95, "higher_is_better"),
    ],
)
def test_gate_rejects_bad_input(suites, primary, tol, conf, match):
    with pytest.raises(FlywheelError, match=match):
        gate(suites, primary, tol, conf)
