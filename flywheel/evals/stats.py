"""Paired statistics over per-prompt scores, and the promotion gate built on them.

A candidate and a baseline policy answer the same held-out prompts, so their scores come in pairs.
Pairing removes the prompt-difficulty variance that an unpaired comparison would carry: the unit of
analysis is the per-prompt difference ``a_i - b_i``.

* ``paired_bootstrap``: the percentile bootstrap (Efron & Tibshirani, 1993, ch. 13) of the mean
  difference, resampling prompts with replacement; the per-prompt form is the paired bootstrap that
  Koehn (2004, "Statistical Significance Tests for Machine Translation Evaluation") uses to compare
  two systems on one test set.
* ``sign_test``: the exact two-sided sign test (wins vs losses under Binomial(n, 1/2), ties dropped).
* ``gate``: promote only when the primary suite improves with the stated confidence and no other
  suite regresses by more than a tolerance.

Everything here is pure Python (``random.Random`` for resampling) and deterministic given a seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from flywheel.errors import FlywheelError


def _scores(values: Any, what: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise FlywheelError(f"{what}: expected a sequence of numbers, got {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise FlywheelError(f"{what}: score {i} is not a finite number: {v!r:.40}")
        out.append(float(v))
    return out


def _paired(a: Any, b: Any, what: str) -> tuple[list[float], list[float]]:
    xs, ys = _scores(a, f"{what} candidate"), _scores(b, f"{what} baseline")
    if len(xs) != len(ys):
        raise FlywheelError(
            f"{what}: candidate has {len(xs)} scores, baseline {len(ys)}; paired scores must cover the same prompts"
        )
    if not xs:
        raise FlywheelError(f"{what}: no scores")
    return xs, ys


def _check_confidence(confidence: Any) -> float:
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise FlywheelError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (position ``q * (len - 1)``)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap of the mean paired difference ``mean(a) - mean(b)``.

    Each resample draws ``n`` prompts with replacement and takes the mean of their differences.

    Args:
        a: candidate scores, one per prompt, ``[n]``.
        b: baseline scores on the same prompts, ``[n]``.
        resamples: number of bootstrap resamples (>= 1).
        confidence: two-sided coverage of the interval, in (0, 1).
        seed: seed of the ``random.Random`` that draws the resamples.

    Returns:
        ``{"n", "mean_a", "mean_b", "delta", "low", "high", "confidence", "resamples", "p_value"}``;
        ``(low, high)`` is the percentile interval of the resampled mean differences and
        ``p_value`` the share of resamples whose mean difference is <= 0 (a one-sided bootstrap
        p-value for "a is not better than b").

    Raises:
        FlywheelError: unequal lengths, no scores, non-finite scores, bad confidence or resamples.
    """
    xs, ys = _paired(a, b, "paired_bootstrap")
    confidence = _check_confidence(confidence)
    if not isinstance(resamples, int) or isinstance(resamples, bool) or resamples < 1:
        raise FlywheelError(f"paired_bootstrap: resamples must be a positive integer, got {resamples!r}")
    n = len(xs)
    diffs = [x - y for x, y in zip(xs, ys)]
    rng = random.Random(seed)
    # rng.choices draws all n indices in one C-level loop: ~0.1 s for n=1000 and 2000 resamples.
    means = sorted(math.fsum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    alpha = 1.0 - confidence
    return {
        "n": n,
        "mean_a": math.fsum(xs) / n,
        "mean_b": math.fsum(ys) / n,
        "delta": math.fsum(diffs) / n,
        "low": _quantile(means, alpha / 2),
        "high": _quantile(means, 1 - alpha / 2),
        "confidence": confidence,
        "resamples": resamples,
        "p_value": sum(1 for m in means if m <= 0) / resamples,
    }


def sign_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Exact two-sided sign test of paired scores.

    Under the null each non-tied pair is a win with probability 1/2, so with ``n = wins + losses``
    and ``k = min(wins, losses)``: ``p = min(1, 2 * sum_{i<=k} C(n, i) / 2**n)``.

    Args:
        a: candidate scores ``[n]``.
        b: baseline scores ``[n]`` on the same prompts.

    Returns:
        ``{"wins", "losses", "ties", "p_value"}``; ``p_value`` is 1.0 when every pair ties.

    Raises:
        FlywheelError: unequal lengths, no scores, or non-finite scores.
    """
    xs, ys = _paired(a, b, "sign_test")
    wins = sum(1 for x, y in zip(xs, ys) if x > y)
    losses = sum(1 for x, y in zip(xs, ys) if x < y)
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        p = 1.0
    else:
        tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n)
        p = float(min(Fraction(1), 2 * tail))
    return {"wins": wins, "losses": losses, "ties": len(xs) - n, "p_value": p}


def _suite_scores(name: str, entry: Any) -> tuple[list[float], list[float], bool]:
    if not isinstance(entry, Mapping) or "candidate" not in entry or "baseline" not in entry:
        raise FlywheelError(f"gate: suite {name!r} needs 'candidate' and 'baseline' score lists")
    higher = entry.get("higher_is_better", True)
    if not isinstance(higher, bool):
        raise FlywheelError(f"gate: suite {name!r}: higher_is_better must be true or false")
    xs, ys = _paired(entry["candidate"], entry["baseline"], f"gate: suite {name!r}")
    return xs, ys, higher


def _fmt(stats: Mapping[str, Any]) -> str:
    return f"{stats['delta']:+.4f} [{stats['low']:+.4f}, {stats['high']:+.4f}]"


GUARDS = ("confident", "mean")


def gate(
    suites: Mapping[str, Mapping[str, Any]],
    primary: str,
    tolerance: float,
    confidence: float,
    *,
    margin: float = 0.0,
    sign_alpha: float | None = None,
    resamples: int = 2000,
    seed: int = 0,
    guard: str = "confident",
) -> tuple[bool, str, dict[str, dict[str, Any]]]:
    """Decide whether a candidate replaces the baseline.

    Deltas are signed so that positive means "candidate better": ``mean(candidate) -
    mean(baseline)`` when ``higher_is_better`` (the default), the reverse otherwise. Promote only if

    * the primary suite's bootstrap interval lies above ``margin`` (``low > margin``; default 0), and, when
      ``sign_alpha`` is given, its exact sign test rejects "no difference" (``p <= sign_alpha``): with few
      prompts a percentile interval is over-confident, the sign test is not; and
    * no other suite regresses beyond ``tolerance``: with ``guard="mean"`` its mean delta is >= ``-tolerance``;
      with ``guard="confident"`` (the default) a suite holds the candidate only when its mean delta is below
      ``-tolerance`` *and* its interval lies below 0 -- a regression shown at ``confidence``, as the primary
      suite's gain must be. A guard at its floor (a 135M model's math: 1-5 of 150 problems) swings by more than
      a tolerance from noise alone; that holds nothing.

    Args:
        suites: ``{name: {"candidate": [n], "baseline": [n], "higher_is_better": bool}}``, per-prompt
            scores on the same prompts in the same order.
        primary: the suite that must improve.
        tolerance: largest regression (in score units, >= 0) allowed on the other suites.
        confidence: coverage of the primary suite's interval, in (0, 1).
        resamples: bootstrap resamples per suite.
        seed: bootstrap seed (the same for every suite, so the decision is reproducible).
        guard: ``"confident"`` or ``"mean"``: how a regression of the other suites is judged (see above).
        margin: the improvement the primary suite's lower bound must exceed (score units).
        sign_alpha: the sign test's level for the primary suite, or None to skip it.

    Returns:
        ``(promoted, reason, stats)``: ``reason`` is one line naming each suite's delta, interval
        and verdict; ``stats[name]`` holds the oriented bootstrap (``delta``, ``low``, ``high``,
        ``p_value``, ...) and sign-test (``wins``, ``losses``, ``ties``, ``sign_p_value``) results
        plus ``mean_candidate``, ``mean_baseline``, ``role`` (``"primary"`` or ``"guard"``),
        ``higher_is_better`` and ``ok``.

    Raises:
        FlywheelError: no suites, unknown primary, bad scores, bad confidence or tolerance.
    """
    if not isinstance(suites, Mapping) or not suites:
        raise FlywheelError("gate: no suites given")
    if primary not in suites:
        raise FlywheelError(f"gate: primary suite {primary!r} not among {sorted(suites)}")
    if not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) or tolerance < 0:
        raise FlywheelError(f"gate: tolerance must be a finite number >= 0, got {tolerance!r}")
    confidence = _check_confidence(confidence)
    if guard not in GUARDS:
        raise FlywheelError(f"gate: guard must be one of {GUARDS}, got {guard!r}")
    stats: dict[str, dict[str, Any]] = {}
    parts: list[str] = []
    for name in [primary] + sorted(n for n in suites if n != primary):
        xs, ys, higher = _suite_scores(name, suites[name])
        # Oriented so that a positive delta and a "win" always mean the candidate did better.
        first, second = (xs, ys) if higher else (ys, xs)
        boot = paired_bootstrap(first, second, resamples=resamples, confidence=confidence, seed=seed)
        sign = sign_test(first, second)
        role = "primary" if name == primary else "guard"
        if role == "primary":
            ok = boot["low"] > margin
            why = f"improves at {confidence:.0%}" if ok else f"interval does not clear {margin:g} at {confidence:.0%}"
            if ok and sign_alpha is not None and sign["p_value"] > sign_alpha:
                ok = False
                why = (
                    f"sign test p={sign['p_value']:.3g} > {sign_alpha:g} ({sign['wins']} wins, {sign['losses']} losses)"
                )
        else:
            ok = boot["delta"] >= -tolerance
            why = f"within tolerance {tolerance:g}" if ok else f"regresses beyond tolerance {tolerance:g}"
            if not ok and guard == "confident" and boot["high"] >= 0:
                ok = True
                why = f"below tolerance {tolerance:g} but not a regression at {confidence:.0%}"
        stats[name] = {
            **boot,
            "mean_candidate": math.fsum(xs) / len(xs),
            "mean_baseline": math.fsum(ys) / len(ys),
            "wins": sign["wins"],
            "losses": sign["losses"],
            "ties": sign["ties"],
            "sign_p_value": sign["p_value"],
            "role": role,
            "higher_is_better": higher,
            "ok": ok,
        }
        parts.append(f"{name} ({role}) {_fmt(boot)} {why}")
    promoted = all(s["ok"] for s in stats.values())
    reason = ("promote: " if promoted else "hold: ") + "; ".join(parts)
    return promoted, reason, stats
