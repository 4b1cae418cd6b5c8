"""Preference pair and SFT selection from scored rows; LLM-judge pair selection."""

import pytest

from flywheel.errors import FlywheelError
from flywheel.judges.candidates import mark_cut
from flywheel.judges.gaps import judged_gap, judged_gaps, with_judged_gap
from flywheel.judges.llm_select import judge_requests, pairwise_select
from flywheel.judges.repair_pairs import select_repair
from flywheel.judges.select import select_pair, select_preferences
from flywheel.judges.sft_select import select_dialogues, select_sft, select_sft_rows
from flywheel.sdg.instructions import make_instruction

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


# --- the RPO sign rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "judge, rewards, expected",
    [
        # inverted: swapped, the gap keeps its size (1.0 >= 0.5)
        ("verifier", (2.0, 3.0), (3.0, 2.0, True)),
        ("llm_judge", (-1.0, 1.5), (1.5, -1.0, True)),
        # tied: chosen = rejected + min_gap
        ("verifier", (2.0, 2.0), (2.5, 2.0, True)),
        ("verifier_repair", (1.0, 1.0), (1.5, 1.0, True)),
        # inverted by less than min_gap: swapped, then widened from the lower reward
        ("verifier", (1.0, 1.25), (1.5, 1.0, True)),
        # right sign but below min_gap: widened
        ("llm_judge", (1.25, 1.0), (1.5, 1.0, True)),
        # right sign, at or above min_gap: unchanged
        ("verifier", (3.0, 2.5), (3.0, 2.5, False)),
        ("llm_judge", (4.0, 1.0), (4.0, 1.0, False)),
        # the reward model's pairs are never changed
        ("reward_model", (3.0, 2.75), (3.0, 2.75, False)),
    ],
)
def test_judged_gap(judge, rewards, expected):
    assert judged_gap(*rewards, judge, 0.5) == expected


def test_without_the_rule_an_inverted_verifier_pair_has_a_negative_target_gap():
    eta = 1.0
    rows = [row("right", 2.0, True), row("wrong", 3.0, False)]
    raw, _ = select_pair(rows)
    # RPO's target gap eta * (r*(chosen) - r*(rejected)) would push the policy towards the wrong response
    assert eta * (raw["reward_chosen"] - raw["reward_rejected"]) == -1.0
    (pair,), stats = select_preferences(rows, min_judged_gap=0.5)
    assert texts(pair) == ("right", "wrong")
    assert eta * (pair["reward_chosen"] - pair["reward_rejected"]) == 1.0
    assert (pair["reward_model_chosen"], pair["reward_model_rejected"]) == (2.0, 3.0)
    assert (stats.reward_inverted, stats.rpo_sign_adjusted) == (1, 1)
    assert stats.as_dict()["rpo_sign_adjusted"] == 1


def test_tied_verifier_pair_gets_the_min_gap():
    (pair,), stats = select_preferences([row("right", 1.0, True), row("wrong", 1.0, False)], min_judged_gap=0.25)
    assert (pair["reward_chosen"], pair["reward_rejected"], pair["judge"]) == (1.25, 1.0, "verifier")
    assert stats.rpo_sign_adjusted == 1 and stats.reward_inverted == 0


def test_reward_model_pairs_are_never_adjusted():
    groups = [
        FOUR,
        [row("a", 1.0, pid="q"), row("b", 1.5, pid="q")],
        [row("x", 0.5, True, pid="r"), row("y", 2.0, pid="r"), row("z", 0.0, pid="r")],
    ]
    for policy in ("max_min", "best_second", "max_random"):
        for min_gap in (0.0, 0.25):
            for group in groups:
                for seed in range(5):
                    raw, _ = select_pair(group, policy, min_gap, seed=seed)
                    (pair,), stats = select_preferences(group, policy, min_gap, seed=seed, min_judged_gap=5.0)
                    assert pair["judge"] == "reward_model" and pair == raw
                    # chosen has the higher reward by construction
                    assert pair["reward_chosen"] > pair["reward_rejected"]
                    assert stats.rpo_sign_adjusted == 0 and "reward_model_chosen" not in pair


def test_verifier_pair_with_a_clear_gap_is_kept_as_it_is():
    rows = [row("right", 3.0, True), row("wrong", 1.0, False)]
    (pair,), stats = select_preferences(rows)
    assert pair == select_pair(rows)[0] and stats.rpo_sign_adjusted == 0


def test_judged_gaps_over_rows_is_idempotent_and_skips_rows_without_rewards():
    pairs = [
        {"judge": "llm_judge", "reward_chosen": 0.5, "reward_rejected": 1.0, "prompt_id": "p1"},
        {"judge": "llm_judge", "reward_chosen": None, "reward_rejected": None, "prompt_id": "p2"},
        {"judge": "reward_model", "reward_chosen": 2.0, "reward_rejected": 1.0, "prompt_id": "p3"},
    ]
    once, n = judged_gaps(pairs, 0.5)
    assert n == 1
    assert once[0] == {
        "judge": "llm_judge",
        "reward_chosen": 1.0,
        "reward_rejected": 0.5,
        "prompt_id": "p1",
        "reward_model_chosen": 0.5,
        "reward_model_rejected": 1.0,
    }
    assert once[1:] == pairs[1:]
    assert judged_gaps(once, 0.5) == (once, 0)
    assert with_judged_gap(pairs[0], 0.5) == (once[0], True)


@pytest.mark.parametrize(
    "args",
    [
        (1.0, 2.0, "verifier", 0.0),
        (1.0, 2.0, "verifier", -0.5),
        (1.0, 2.0, "verifier", float("inf")),
        (float("nan"), 2.0, "verifier", 0.5),
        (1.0, 2.0, "oracle", 0.5),
    ],
)
def test_judged_gap_rejects_bad_arguments(args):
    with pytest.raises(FlywheelError):
        judged_gap(*args)
    with pytest.raises(FlywheelError):
        select_preferences(FOUR, min_judged_gap=0.0)


# --- verifier-guided repair in selection -----------------------------------------------------------------

LOWER = {"instructions": [make_instruction("all_lowercase", {})]}
BULLETS = {"instructions": [make_instruction("bullets", {"n": 3})]}


def test_all_failing_prompt_gets_a_repair_pair():
    rows = [
        row("Paris is the Capital.", 2.0, False, meta=LOWER),
        row("It is Paris.", 1.0, False, meta=LOWER),
        row("", 3.0, False, meta=LOWER),  # empty: not a candidate
    ]
    assert select_pair(rows) == (None, "all_verified_false")
    pairs, stats = select_preferences(rows, min_judged_gap=0.5)
    assert pairs == [
        {
            "prompt": [USER],
            "chosen": [{"role": "assistant", "content": "paris is the capital."}],
            "rejected": [{"role": "assistant", "content": "Paris is the Capital."}],
            "reward_chosen": 2.5,
            "reward_rejected": 2.0,
            "judge": "verifier_repair",
            "prompt_id": "p1",
            "reward_model_chosen": None,
            "reward_model_rejected": 2.0,
        }
    ]
    assert (stats.kept, stats.repaired, stats.rpo_sign_adjusted, stats.skipped) == (1, 1, 0, {})
    assert stats.by_judge == {"verifier_repair": 1}
    flat = stats.as_dict()
    assert flat["repaired"] == 1 and flat["judge/verifier_repair"] == 1
    # a single failing response is enough for a repair pair
    (single,), _ = select_preferences(rows[:1])
    assert texts(single) == ("paris is the capital.", "Paris is the Capital.")


def test_repair_is_off_without_the_flag_or_the_verifiers():
    rows = [row("Paris is the Capital.", 2.0, False, meta=LOWER), row("It is Paris.", 1.0, False, meta=LOWER)]
    pairs, stats = select_preferences(rows, repair=False)
    assert pairs == [] and stats.skipped == {"all_verified_false": 1} and stats.repaired == 0
    pairs, stats = select_preferences(rows, use_verifiers=False)
    assert [p["judge"] for p in pairs] == ["reward_model"] and stats.repaired == 0 and not stats.repair_failed


def test_repair_only_when_every_response_fails():
    # one unverified response: the reward model decides, nothing is repaired
    rows = [row("Paris is the Capital.", 2.0, False, meta=LOWER), row("It is Paris.", 3.0, meta=LOWER)]
    pairs, stats = select_preferences(rows)
    assert [(p["judge"], *texts(p)) for p in pairs] == [("reward_model", "It is Paris.", "Paris is the Capital.")]
    assert stats.repaired == 0 and not stats.repair_failed
    # a verified-True response with nothing to pair against: skipped, not repaired
    rows = [row("x", 1.0, True, meta=LOWER), row("Paris", 3.0, meta=LOWER)]
    pairs, stats = select_preferences(rows)
    assert pairs == [] and stats.skipped == {"no_rejected_candidate": 1}
    assert stats.repaired == 0 and not stats.repair_failed


def test_repair_failures_are_counted_by_reason():
    rows = [
        row("No bullets here.", 2.0, False, meta=BULLETS),
        row("None here.", 1.0, False, meta=BULLETS),
        row("Three 41", 1.0, False, pid="p2", meta={"answer": "42"}),
        row("no meta", 1.0, False, pid="p3"),
    ]
    pairs, stats = select_preferences(rows)
    assert pairs == []
    assert stats.repair_failed == {"unfixable/bullets": 1, "math_answer_absent": 1, "no_verifier": 1}
    assert stats.skipped == {"all_verified_false": 1, "too_few_responses": 2}
    flat = stats.as_dict()
    assert flat["repair_failed/unfixable/bullets"] == 1 and flat["repaired"] == 0


def test_repair_of_a_response_that_now_passes_makes_no_pair():
    rows = [row("already lowercase.", 2.0, False, meta=LOWER)]
    assert select_repair(rows) == (None, None, "already_passes")


def test_select_repair_sft_row_and_gap():
    rows = [row("There are 42 apples, 6 more than 36.", 1.5, False, kind="math", meta={"answer": "42"})]
    pair, sft_row, reason = select_repair(rows, min_judged_gap=1.0)
    assert reason is None
    fixed = "There are 42 apples, 6 more than 36.\nThe answer is 42."
    assert (pair["reward_chosen"], pair["reward_rejected"]) == (2.5, 1.5)
    assert texts(pair) == (fixed, "There are 42 apples, 6 more than 36.")
    assert sft_row == {
        "messages": [USER, {"role": "assistant", "content": fixed}],
        "reward": 1.5,
        "kind": "math",
        "prompt_id": "p1",
        "repaired": True,
    }
    assert select_repair([row("x", 1.0, True)]) == (None, None, None)
    assert select_repair([]) == (None, None, None)


def test_sft_rows_take_the_repair_when_nothing_else_is_kept():
    rows = [
        row("Paris is the Capital.", 2.0, False, meta=LOWER),
        row("It is Paris.", 1.0, False, meta=LOWER),
        row("good", 3.0, True, pid="p2", meta=LOWER),
        row("Bad", 4.0, False, pid="p2", meta=LOWER),
        row("No bullets.", 2.0, False, pid="p3", meta=BULLETS),
    ]
    kept, stats = select_sft_rows(rows, threshold=None)
    assert [(r["prompt_id"], r["messages"][-1]["content"], r.get("repaired")) for r in kept] == [
        ("p1", "paris is the capital.", True),
        ("p2", "good", None),
    ]
    assert kept[0] == {
        "messages": [USER, {"role": "assistant", "content": "paris is the capital."}],
        "reward": 2.0,
        "kind": "general",
        "prompt_id": "p1",
        "repaired": True,
    }
    assert (stats.kept, stats.repaired, stats.repair_failed) == (2, 1, {"unfixable/bullets": 1})
    assert stats.skipped == {"all_verified_false": 1}
    # the threshold applies to the repaired response's (original) reward
    kept, stats = select_sft_rows(rows, threshold=2.5)
    assert [r["prompt_id"] for r in kept] == ["p2"]
    assert stats.skipped == {"repaired_below_threshold": 1, "all_verified_false": 1} and stats.repaired == 0
    kept, stats = select_sft_rows(rows, threshold=None, repair=False)
    assert [r["prompt_id"] for r in kept] == ["p2"] and stats.skipped == {"all_verified_false": 2}


def test_select_dialogues_keeps_the_best_rated_share_when_no_threshold():
    rows = [{"id": i, "reward": r} for i, r in enumerate([0.1, 0.9, 0.5, 0.7, float("nan")])]
    kept, dropped = select_dialogues(rows, None, keep_share=0.5)  # 4 finite: the best 2 (0.9, 0.7), in order
    assert [r["id"] for r in kept] == [1, 3] and dropped == 3
    kept, _ = select_dialogues(rows, 0.4, keep_share=0.25)  # an explicit threshold wins
    assert [r["id"] for r in kept] == [1, 2, 3]
    with pytest.raises(FlywheelError):
        select_dialogues(rows, None, keep_share=0.0)


def test_a_truncated_response_is_never_chosen_kept_or_repaired():
    # the best reward is cut at the token limit: the next complete one is chosen; the cut one may be rejected
    rows = [row("cut mid", 5.0, finished=False), row("whole.", 2.0), row("worse.", 1.0)]
    pair, reason = select_pair(rows, "max_min")
    assert reason is None and texts(pair) == ("whole.", "worse.")
    low = [row("cut mid", -1.0, finished=False), row("whole.", 2.0)]
    assert texts(select_pair(low, "max_min")[0]) == ("whole.", "cut mid")
    assert select_pair([row("a", 1.0, finished=False), row("b", 2.0, finished=False)]) == (None, "all_truncated")
    # a verified-right but truncated answer is no verifier pair's chosen side; the reward model decides instead
    ver = [row("right but cut", 3.0, True, finished=False), row("wrong.", 1.0, False), row("plain.", 2.0)]
    pair, _ = select_pair(ver, "max_min")
    assert pair["judge"] == "reward_model" and texts(pair)[0] == "plain."
    # SFT: the complete answer, never the better-rewarded cut one
    kept, reason = select_sft([row("cut mid", 5.0, finished=False), row("whole.", 2.0)], None)
    assert reason is None and [r["messages"][-1]["content"] for r in kept] == ["whole."]
    assert select_sft([row("cut", 5.0, finished=False)], None) == ([], "all_truncated")
    # repair starts from a complete failing answer only
    meta = {"instructions": [make_instruction("all_uppercase", {})]}
    cut = [row("cut mid", 3.0, False, meta=meta, finished=False), row("Whole one.", 1.0, False, meta=meta)]
    pair, sft_row, reason = select_repair(cut)
    assert reason is None and texts(pair) == ("WHOLE ONE.", "Whole one.")
    only_cut = [row("cut mid", 3.0, False, meta=meta, finished=False)]
    assert select_repair(only_cut) == (None, None, "truncated")
    # rows without the field (older runs) count as complete
    assert texts(select_pair([row("x", 2.0), row("y", 1.0)])[0]) == ("x", "y")


def test_a_cut_response_is_marked_where_it_is_used():
    # as a rejected side it carries the mark (no end of turn is scored for it); a complete one carries none
    pair, _ = select_pair([row("cut mid", -1.0, finished=False), row("whole.", 2.0)], "max_min")
    assert pair["rejected"][0].get("cut") is True and "cut" not in pair["chosen"][0]
    # complete_only off (mark_cut): the cut answer may be chosen and kept, marked; the row loses ``finished``
    rows = [mark_cut(row("cut mid", 5.0, finished=False)), mark_cut(row("whole.", 2.0, finished=True))]
    assert all("finished" not in r for r in rows) and "cut" not in rows[1]["messages"][-1]
    pair, _ = select_pair(rows, "max_min")
    assert texts(pair) == ("cut mid", "whole.") and pair["chosen"][0]["cut"] is True
    kept, _ = select_sft(rows, None)
    assert kept[0]["messages"][-1] == {"role": "assistant", "content": "cut mid", "cut": True}
    # a repair that keeps the cut end keeps the mark; one that closes the text (an end phrase) drops it
    upper = {"instructions": [make_instruction("all_uppercase", {})]}
    _, sft_row, _ = select_repair([mark_cut(row("Cut mid", 3.0, False, meta=upper, finished=False))])
    assert sft_row["messages"][-1] == {"role": "assistant", "content": "CUT MID", "cut": True}
    end = {"instructions": [make_instruction("end_phrase", {"phrase": "Any other questions?"})]}
    _, sft_row, _ = select_repair([mark_cut(row("Cut mid", 3.0, False, meta=end, finished=False))])
    assert sft_row["messages"][-1]["content"].endswith("Any other questions?")
    assert "cut" not in sft_row["messages"][-1]


def test_two_responses_is_repaired_by_joining_the_two_best_different_responses():
    two = {"instructions": [make_instruction("two_responses", {})]}
    rows = [
        row("Paris.", 1.0, False, meta=two),
        row("It is Paris.", 3.0, False, meta=two),
        row("I cannot help with that.", 2.0, False, meta=two),  # a refusal is never the second response
        row("It is Paris.", 2.5, False, meta=two, id="dup"),  # the same text again is not a second response
    ]
    pair, sft_row, reason = select_repair(rows)
    assert reason is None
    assert texts(pair) == ("It is Paris.\n******\nParis.", "It is Paris.")
    assert sft_row["messages"][-1]["content"] == "It is Paris.\n******\nParis." and sft_row["repaired"] is True
    # one response only: nothing to join
    assert select_repair(rows[1:2]) == (None, None, "unfixable/two_responses")


def test_two_responses_never_joins_an_answer_cut_at_the_token_limit():
    two = {"instructions": [make_instruction("two_responses", {})]}
    cut = {"role": "assistant", "content": "It is Par", "cut": True}
    rows = [row("Paris.", 3.0, False, meta=two), {**row("x", 2.0, False, meta=two), "messages": [dict(USER), cut]}]
    assert select_repair(rows) == (None, None, "unfixable/two_responses")  # the only other answer is cut
    rows = [{**row("x", 3.0, False, meta=two), "messages": [dict(USER), cut]}, row("Paris.", 2.0, False, meta=two)]
    assert select_repair(rows) == (None, None, "unfixable/two_responses")  # the best one is cut itself
