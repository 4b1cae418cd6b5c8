"""Evaluation summaries and the promotion decision (pure)."""

from __future__ import annotations

from statistics import mean
from typing import Any


def summarize(candidate: list[dict[str, Any]], generator: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare per-prompt results of the candidate and the current generator on the same prompts.

    Args:
        candidate, generator: rows with ``reward`` (float) and ``verified`` (True/False/None), aligned by prompt.
    Returns:
        mean rewards, the candidate's win rate (ties count half) and verifier pass rates where they apply.
    """
    if len(candidate) != len(generator) or not candidate:
        raise ValueError("candidate and generator results must be non-empty and aligned")
    wins = sum(
        1.0 if c["reward"] > g["reward"] else 0.5 if c["reward"] == g["reward"] else 0.0
        for c, g in zip(candidate, generator)
    )
    out = {
        "prompts": len(candidate),
        "candidate_reward": mean(r["reward"] for r in candidate),
        "generator_reward": mean(r["reward"] for r in generator),
        "win_rate": wins / len(candidate),
    }
    for role, rows in (("candidate", candidate), ("generator", generator)):
        checked = [r["verified"] for r in rows if r.get("verified") is not None]
        if checked:
            out[f"{role}_verified_pass"] = sum(checked) / len(checked)
    return out


def decide(metrics: dict[str, Any], metric: str, margin: float) -> tuple[bool, str]:
    """Promote only if the candidate beats the generator by more than ``margin``.

    ``mean_reward``: candidate_reward - generator_reward > margin.
    ``win_rate``: win_rate - 0.5 > margin.
    """
    if metric == "mean_reward":
        delta = metrics["candidate_reward"] - metrics["generator_reward"]
    elif metric == "win_rate":
        delta = metrics["win_rate"] - 0.5
    else:
        raise ValueError(f"unknown promotion metric {metric!r}")
    verdict = delta > margin
    return verdict, f"{metric} delta {delta:+.4f} {'>' if verdict else '<='} margin {margin}"
