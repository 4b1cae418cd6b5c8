"""Reward model pairwise accuracy, overall and by category."""

import pytest

from flywheel.errors import FlywheelError
from flywheel.judges.metrics import accuracy_by_category, categorize, ground_truth_gap, pairwise_accuracy


def test_pairwise_accuracy_strict():
    # correct: (2>1) yes, (1>2) no, (3>3) tie counts as wrong, (0.5>-1) yes -> 2/4
    assert pairwise_accuracy([(2.0, 1.0), (1.0, 2.0), (3.0, 3.0), (0.5, -1.0)]) == 0.5
    assert pairwise_accuracy([(1.0, 0.0)]) == 1.0


@pytest.mark.parametrize("pairs", [[], [(float("nan"), 1.0)], [(1.0, float("inf"))]])
def test_pairwise_accuracy_bad_input(pairs):
    with pytest.raises(FlywheelError):
        pairwise_accuracy(pairs)


def test_ground_truth_gap_by_hand():
    chosen = {"helpfulness": 4, "correctness": 4, "coherence": 4, "complexity": 2, "verbosity": 1}
    rejected = {"helpfulness": 3, "correctness": 2, "coherence": 4, "complexity": 2, "verbosity": 3}
    # 0.3*1 + 0.74*2 + 0.46*0 + 0.47*0 - 0.33*(-2) = 0.3 + 1.48 + 0.66 = 2.44
    assert ground_truth_gap(chosen, rejected) == pytest.approx(2.44)
    # only helpfulness is labelled on both sides: 0.3 * (2 - 1) = 0.3
    assert ground_truth_gap({"helpfulness": 2, "verbosity": None}, {"helpfulness": 1, "verbosity": 3}) == pytest.approx(
        0.3
    )
    assert ground_truth_gap({"helpfulness": 2}, {"correctness": 1}) is None


ROWS = [
    {"category": "safety", "reward_chosen": 1.0, "reward_rejected": 0.0},
    {"judge": "verifier", "reward_chosen": 2.0, "reward_rejected": 1.0},
    {"meta": {"answer": "4"}, "reward_chosen": 0.0, "reward_rejected": 1.0},
    # gap 0.74 * (3 - 2.5) = 0.37 < 0.5 -> hard
    {
        "gt_chosen": {"helpfulness": 3, "correctness": 3},
        "gt_rejected": {"helpfulness": 3, "correctness": 2.5},
        "reward_chosen": 1.0,
        "reward_rejected": 0.0,
    },
    # gap 0.3 * (4 - 1) = 0.9 -> chat
    {"gt_chosen": {"helpfulness": 4}, "gt_rejected": {"helpfulness": 1}, "reward_chosen": 0.0, "reward_rejected": 0.0},
    {"reward_chosen": 3.0, "reward_rejected": 1.0},
    # gap 0.3 -> hard
    {"gt_chosen": {"helpfulness": 2}, "gt_rejected": {"helpfulness": 1}, "reward_chosen": 0.0, "reward_rejected": 1.0},
]


def test_categorize():
    assert [categorize(r) for r in ROWS] == ["safety", "reasoning", "reasoning", "hard", "chat", "chat", "hard"]
    # a larger hard_gap turns the 0.9 gap into hard as well
    assert categorize(ROWS[4], hard_gap=1.0) == "hard"


def test_accuracy_by_category():
    result = accuracy_by_category(ROWS)
    assert result == {
        "chat": (0.5, 2),
        "hard": (0.5, 2),
        "reasoning": (0.5, 2),
        "safety": (1.0, 1),
        "all": (pytest.approx(4 / 7), 7),
    }


def test_accuracy_by_category_bad_rows():
    with pytest.raises(FlywheelError):
        accuracy_by_category([])
    with pytest.raises(FlywheelError, match="row 1"):
        accuracy_by_category([ROWS[0], {"reward_chosen": None, "reward_rejected": 1.0}])
