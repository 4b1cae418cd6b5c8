"""Held-out pairs from rated rows, their categories, and accuracy by category with a fake scorer."""

from __future__ import annotations

import pytest

from flywheel.reward.accuracy import accuracy_line, conversations_of, evaluate
from flywheel.reward.pairs import helpsteer_pairs, preference_pairs


def _row(prompt, response, h, c, coh, cx, v, meta=None):
    row = {
        "prompt": prompt,
        "response": response,
        "helpfulness": h,
        "correctness": c,
        "coherence": coh,
        "complexity": cx,
        "verbosity": v,
    }
    if meta is not None:
        row["meta"] = meta
    return row


MATH = "Ann has 3 apples and gets 4 more. How many now?"
RIGHT = _row(MATH, "3 + 4 = 7.\nThe answer is 7.", 4, 4, 4, 1, 1, {"answer": "7"})  # reward 6.14
WRONG = _row(MATH, "3 + 4 = 7.\nThe answer is 8.", 0, 0, 1, 1, 1, {"answer": "7"})  # reward 0.60
CHAT = "Why is the sky blue?"
GOOD = _row(CHAT, "Air scatters blue light most.", 4, 4, 4, 2, 2)  # reward 6.28
PADDED = _row(CHAT, "Air scatters blue light most. I hope this helps.", 4, 4, 4, 2, 3)  # reward 5.95
SALAD = _row(CHAT, "blue most light scatters Air.", 0, 1, 0, 2, 2)  # reward 1.02


def test_pairs_order_by_ground_truth_and_categorise():
    pairs = helpsteer_pairs([WRONG, RIGHT, GOOD, PADDED, SALAD])
    got = {
        (p["chosen"][0]["content"], p["rejected"][0]["content"]): (p["category"], round(p["gt_gap"], 2)) for p in pairs
    }
    assert got == {
        (RIGHT["response"], WRONG["response"]): ("reasoning", 5.54),
        (GOOD["response"], PADDED["response"]): ("hard", 0.33),
        (GOOD["response"], SALAD["response"]): ("chat", 5.26),
        (PADDED["response"], SALAD["response"]): ("chat", 4.93),
    }
    assert pairs[0]["prompt"] == [{"role": "user", "content": MATH}]


def test_equal_ground_truth_makes_no_pair():
    twin = dict(GOOD, response="Blue light scatters the most in air.")
    assert helpsteer_pairs([GOOD, twin]) == []


def test_preference_rows_keep_or_derive_category():
    msg = [{"role": "user", "content": "q"}]
    rows = [
        {
            "prompt": msg,
            "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}],
            "judge": "verifier",
        },
        {
            "prompt": msg,
            "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "c"}],
            "category": "chat",
            "judge": "verifier",
        },
        {
            "prompt": msg,
            "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "d"}],
            "gt_gap": 0.2,
        },
    ]
    assert [p["category"] for p in preference_pairs(rows)] == ["reasoning", "chat", "hard"]


def test_conversations_are_scored_once():
    pairs = helpsteer_pairs([GOOD, PADDED, SALAD])
    convs, refs = conversations_of(pairs)
    assert len(convs) == 3 and len(refs) == 3


def test_accuracy_by_category_with_a_fake_scorer():
    pairs = helpsteer_pairs([WRONG, RIGHT, GOOD, PADDED, SALAD])
    # helpfulness-only scorer: the reward is 0.3 * helpfulness with the default weights
    table = {
        RIGHT["response"]: 1.0,
        WRONG["response"]: 2.0,
        GOOD["response"]: 3.0,
        PADDED["response"]: 3.0,
        SALAD["response"]: 0.0,
    }

    def score(convs):
        return [[table[c[-1]["content"]], 0.0, 0.0, 0.0, 0.0] for c in convs]

    metrics, scored = evaluate(pairs, score)
    # reasoning: 0.3 vs 0.6 -> wrong; hard: tie -> wrong; chat: 0.9 vs 0 twice -> right
    assert metrics["accuracy/reasoning"] == 0.0 and metrics["pairs/reasoning"] == 1
    assert metrics["accuracy/hard"] == 0.0
    assert metrics["accuracy/chat"] == 1.0 and metrics["pairs/chat"] == 2
    assert metrics["accuracy/all"] == pytest.approx(0.5)
    first = scored[0]
    assert first["reward_chosen"] == pytest.approx(0.3) and first["reward_rejected"] == pytest.approx(0.6)
    assert first["scores_chosen"]["helpfulness"] == 1.0


def test_accuracy_line_names_the_overall_accuracy_and_each_category_with_its_pairs():
    metrics = {
        "accuracy/all": 0.6413,
        "pairs/all": 92,
        "accuracy/reasoning": 0.7778,
        "pairs/reasoning": 45,
        "accuracy/chat": 0.36,
        "pairs/chat": 25,
        "accuracy_by_source/chat/math": 0.25,
        "score_seconds": 12.0,
    }
    assert accuracy_line(metrics) == "pairwise accuracy 0.641 on 92 pairs (chat 0.360 of 25, reasoning 0.778 of 45)"
    assert accuracy_line({"accuracy/all": 1.0, "pairs/all": 3}) == "pairwise accuracy 1.000 on 3 pairs"
