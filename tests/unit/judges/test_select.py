"""Preference pair and SFT selection from scored rows; LLM-judge pair selection."""

import pytest

from flywheel.errors import FlywheelError
from flywheel.judges.llm_select import judge_requests, pairwise_select
from flywheel.judges.select import (
    select_dialogues,
    select_pair,
    select_preferences,
    select_sft,
    select_sft_rows,
)

USER = {"role": "user", "content": "Q?"}


def row(text, reward, verified=None, pid="p1", **extra):
    """A scored row whose assistant text is ``text``."""
    r = {
        "id": f"{pid}-{text}",
        "prompt_id": pid,
        "messages": [dict(USER), {"role": "assistant", "content": text}],
        "reward": reward,
        "scores": {},
        **extra,
    }
    if verified is not None:
        r["verified"] = verified
    return r


def texts(pair):
    return pair["chosen"][0]["content"], pair["rejected"][0]["content"]


FOUR = [row("a", 1.0), row("b", 3.0), row("c", -0.5), row("d", 2.0)]


def test_max_min_full_output_row():
    pair, reason = select_pair(FOUR, "max_min")
    assert reason is None
    assert pair == {
        "prompt": [USER],
        "chosen": [{"role": "assistant", "content": "b"}],
        "rejected": [{"role": "assistant", "content": "c"}],
        "reward_chosen": 3.0,
        "reward_rejected": -0.5,
        "judge": "reward_model",
        "prompt_id": "p1",
    }


def test_best_second_takes_hardest_negative():
    pair, _ = select_pair(FOUR, "best_second")
    assert texts(pair) == ("b", "d")


def test_max_random_is_seeded_and_varies_with_seed():
    picks = {texts(select_pair(FOUR, "max_random", seed=s)[0]) for s in range(30)}
    assert {chosen for chosen, _ in picks} == {"b"}
    assert {rejected for _, rejected in picks} == {"a", "c", "d"}
    assert select_pair(FOUR, "max_random", seed=7) == select_pair(FOUR, "max_random", seed=7)


def test_max_random_does_not_depend_on_other_prompts():
    other = [row("x", 1.0, pid="p0"), row("y", 0.0, pid="p0")]
    alone, _ = select_preferences(FOUR, "max_random", seed=3)
    together, _ = select_preferences(other + FOUR, "max_random", seed=3)
    assert alone[0] == together[1]


def test_min_gap_limits_the_rejected_choice():
    rows = [row("a", 1.0), row("b", 3.0), row("d", 2.8)]
    for seed in range(10):
        assert texts(select_pair(rows, "max_random", min_gap=1.0, seed=seed)[0]) == ("b", "a")
    assert select_pair(rows, "best_second", min_gap=1.0)[0]["rejected"][0]["content"] == "a"
    assert select_pair(rows, "max_min", min_gap=2.5) == (None, "small_gap")


def test_equal_rewards_are_never_a_pair():
    assert select_pair([row("a", 1.0), row("b", 1.0)], "max_min", min_gap=0.0) == (None, "small_gap")


def test_verifier_pair_beats_reward():
    rows = [row("a", 5.0, False), row("b", 1.0, True), row("c", 2.0, True), row("d", 3.0, False)]
    pair, _ = select_pair(rows)
    # chosen: best-reward verified-True (c, 2.0); rejected: lowest-reward verified-False (d, 3.0)
    assert texts(pair) == ("c", "d")
    assert (pair["judge"], pair["reward_chosen"], pair["reward_rejected"]) == ("verifier", 2.0, 3.0)
    pairs, stats = select_preferences(rows)
    assert stats.reward_inverted == 1 and stats.by_judge == {"verifier": 1}
    # with verifiers off the reward decides
    pair, _ = select_pair(rows, use_verifiers=False)
    assert texts(pair) == ("a", "b") and pair["judge"] == "reward_model"


def test_verified_false_is_never_chosen_by_reward():
    rows = [row("a", 5.0, False), row("b", 2.0), row("c", 1.0)]
    pair, _ = select_pair(rows)
    # a is wrong, so b is chosen; a has a higher reward so only c is an admissible rejected
    assert texts(pair) == ("b", "c") and pair["judge"] == "reward_model"
    assert select_pair([row("a", 5.0, False), row("b", 2.0, False)]) == (None, "all_verified_false")


def test_verified_true_is_not_rejected_for_an_unverified_response():
    rows = [row("a", 1.0, True), row("b", 3.0), row("c", 0.0)]
    assert texts(select_pair(rows)[0]) == ("b", "c")
    assert select_pair([row("a", 1.0, True), row("b", 3.0)]) == (None, "no_rejected_candidate")


def test_malformed_rows_are_dropped_and_counted():
    rows = [
        row("good", 1.0),
        row("good", 1.0),  # duplicate text
        row("   ", 2.0),  # empty response
        row("nan", float("nan")),
        row("none", None),
        {"prompt_id": "p1", "messages": [dict(USER)], "reward": 1.0},  # no assistant turn
        {"prompt_id": "p1", "messages": "not a list", "reward": 1.0},
        {"messages": [dict(USER), {"role": "assistant", "content": "z"}], "reward": 1.0},  # no prompt_id
    ]
    pairs, stats = select_preferences(rows)
    assert pairs == []
    assert stats.seen == 1 and stats.kept == 0
    assert stats.skipped == {"too_few_responses": 1}
    assert stats.dropped_rows == {
        "duplicate": 1,
        "empty_response": 1,
        "no_reward": 2,
        "no_assistant_turn": 2,
        "no_prompt_id": 1,
    }
    flat = stats.as_dict()
    assert flat["skipped/too_few_responses"] == 1 and flat["dropped/no_reward"] == 2 and flat["kept"] == 0


def test_select_preferences_over_prompts():
    rows = FOUR + [row("x", 0.5, pid="p2"), row("y", 0.7, pid="p2")] + [row("only", 1.0, pid="p3")]
    pairs, stats = select_preferences(rows, "max_min", min_gap=0.5)
    assert [p["prompt_id"] for p in pairs] == ["p1"]
    assert (stats.seen, stats.kept) == (3, 1)
    assert stats.skipped == {"small_gap": 1, "too_few_responses": 1}


@pytest.mark.parametrize("policy, min_gap", [("best_of_all", 0.0), ("max_min", -1.0), ("max_min", float("nan"))])
def test_bad_policy_arguments(policy, min_gap):
    with pytest.raises(FlywheelError):
        select_preferences(FOUR, policy, min_gap)


SFT_ROWS = [row("a", 3.0), row("b", 4.5, False), row("c", 4.0), row("d", 4.0, kind="math")]


def test_select_sft_best_above_threshold():
    kept, reason = select_sft(SFT_ROWS, threshold=3.5)
    assert reason is None
    # b has the best reward but is verified wrong; c and d tie at 4.0 and c comes first
    assert kept == [
        {"messages": [USER, {"role": "assistant", "content": "c"}], "reward": 4.0, "kind": "general", "prompt_id": "p1"}
    ]
    kept, _ = select_sft(SFT_ROWS, threshold=3.5, best_only=False)
    assert [(r["messages"][-1]["content"], r["kind"]) for r in kept] == [("c", "general"), ("d", "math")]
    assert select_sft(SFT_ROWS, threshold=None)[0][0]["reward"] == 4.0
    assert select_sft(SFT_ROWS, threshold=4.1) == ([], "below_threshold")
    assert select_sft(SFT_ROWS, threshold=4.1, use_verifiers=False)[0][0]["messages"][-1]["content"] == "b"


def test_select_sft_prefers_verified_true():
    rows = [row("a", 3.0, True), row("c", 4.0)]
    assert select_sft(rows, threshold=None)[0][0]["messages"][-1]["content"] == "a"
    assert select_sft([row("b", 4.5, False)], threshold=None) == ([], "all_verified_false")
    assert select_sft([row("", 4.5)], threshold=None) == ([], "no_valid_response")


def test_select_sft_rows_counts():
    rows = SFT_ROWS + [row("x", 1.0, pid="p2")]
    kept, stats = select_sft_rows(rows, threshold=3.5, kind="chat")
    assert [r["prompt_id"] for r in kept] == ["p1"] and kept[0]["kind"] == "chat"
    assert (stats.seen, stats.kept, stats.skipped) == (2, 1, {"below_threshold": 1})


def test_judge_requests_pairs_and_prompts():
    rows = [row("a", None), row("b", None), row("c", 2.0), row("solo", 1.0, pid="p2")]
    requests, stats = judge_requests(rows, pairs_per_prompt=2, seed=1)
    assert len(requests) == 2 and stats.skipped == {"too_few_responses": 1}
    pairs = {(r["first"]["content"], r["second"]["content"]) for r in requests}
    assert len(pairs) == 2 and pairs <= {("a", "b"), ("a", "c"), ("b", "c")}
    req = requests[0]
    ab, ba = req["messages_ab"][1]["content"], req["messages_ba"][1]["content"]
    first, second = req["first"]["content"], req["second"]["content"]
    assert ab.index("## Response A\n\n" + first) < ab.index("## Response B\n\n" + second)
    assert ba.index("## Response A\n\n" + second) < ba.index("## Response B\n\n" + first)
    assert judge_requests(rows, pairs_per_prompt=2, seed=1)[0] == requests
    with pytest.raises(FlywheelError):
        judge_requests(rows, pairs_per_prompt=0)


def _request(first, second, reward_first=None, reward_second=None):
    return {
        "prompt_id": "p1",
        "prompt": [USER],
        "first": {"role": "assistant", "content": first},
        "second": {"role": "assistant", "content": second},
        "reward_first": reward_first,
        "reward_second": reward_second,
    }


def test_pairwise_select_keeps_only_agreeing_orders():
    requests = [
        _request("f1", "s1", 1.0, 2.0),
        _request("f2", "s2"),
        _request("f3", "s3"),
        _request("f4", "s4"),
        _request("f5", "s5"),
    ]
    outputs_ab = ["... [[A]]", "[[B]]", "[[A]]", "[[TIE]]", "no idea"]
    outputs_ba = ["... [[B]]", "[[A]]", "[[A]]", "[[A]]", "[[B]]"]
    pairs, stats = pairwise_select(requests, outputs_ab, outputs_ba)
    assert [texts(p) for p in pairs] == [("f1", "s1"), ("s2", "f2")]
    assert pairs[0]["judge"] == "llm_judge" and pairs[0]["prompt"] == [USER]
    assert (pairs[0]["reward_chosen"], pairs[0]["reward_rejected"]) == (1.0, 2.0)
    assert stats.skipped == {"position_bias": 1, "tie": 1, "unparsed": 1}
    assert (stats.seen, stats.kept, stats.by_judge) == (5, 2, {"llm_judge": 2})
    with pytest.raises(FlywheelError):
        pairwise_select(requests, outputs_ab, outputs_ba[:2])


def test_select_dialogues_keeps_rewards_at_or_above_threshold_in_order():
    rows = [
        {"id": "a", "reward": 0.5},
        {"id": "b", "reward": -1.0},
        {"id": "c", "reward": 0.2},
        {"id": "d", "reward": float("nan")},
        {"id": "e"},
    ]
    kept, dropped = select_dialogues(rows, 0.2)
    assert [r["id"] for r in kept] == ["a", "c"]
    assert dropped == 3
    kept, dropped = select_dialogues(rows, None)
    assert [r["id"] for r in kept] == ["a", "b", "c"] and dropped == 2
