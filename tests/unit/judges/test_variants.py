"""Instruction variants: plain prompts' chosen responses become verified IF rows and verifier pairs."""

from __future__ import annotations

import random
from collections import Counter

from flywheel.judges.repair import FIXABLE_KINDS
from flywheel.judges.variants import instruction_variants, kind_failure_weights, weighted_instructions
from flywheel.judges.verifiers import verify
from flywheel.sdg.instructions import make_instruction

ANSWER = (
    "Saturn has the most known moons of any planet. Its rings are made of ice and rock. "
    "A day there lasts about ten and a half hours. The planet is less dense than water. "
    "Titan, its largest moon, has a thick atmosphere. Probes have studied it for decades."
)


def _row(pid, answer=ANSWER, kind="open_qa", reward=3.0):
    return {
        "messages": [{"role": "user", "content": "Tell me about Saturn."}, {"role": "assistant", "content": answer}],
        "reward": reward,
        "kind": kind,
        "prompt_id": pid,
    }


def test_variants_pass_their_instructions_and_pair_against_the_original():
    rows = [_row(f"p{i}") for i in range(6)]
    sft, pairs, counts = instruction_variants(rows, {}, per_row=3, seed=0, min_judged_gap=0.5)
    assert counts["rows"] == 6 and counts["variants"] == len(sft) == len(pairs) > 6
    assert (
        counts["variants"] + counts["already_passes"] + sum(v for k, v in counts.items() if k.startswith("failed/"))
        == 18
    )
    for s, p in zip(sft, pairs, strict=True):
        prompt = s["messages"][0]["content"]
        assert prompt.startswith("Tell me about Saturn.\n\n") and s["kind"] == "if_variant"
        assert p["prompt"] == s["messages"][:1] and p["chosen"] == s["messages"][1:]
        assert p["rejected"][0]["content"] == ANSWER and p["judge"] == "verifier_repair"
        assert p["reward_chosen"] - p["reward_rejected"] >= 0.5  # RPO pulled towards the verified side
        assert p["prompt_id"].startswith("p") and "#variant-" in p["prompt_id"]
    assert len({s["messages"][0]["content"] for s in sft}) >= 5  # different instructions, row by row


def test_every_variant_verifies_against_its_instructions():
    import random

    from flywheel.judges.repair import FIXABLE_KINDS
    from flywheel.sdg.if_prompts import if_single_prompt, sample_instructions

    rows = [_row("q1")]
    sft, _, _ = instruction_variants(rows, {}, per_row=4, seed=7, min_judged_gap=0.5)
    rng = random.Random("variants:7:q1")
    drawn = []
    for _ in range(4):
        ins = sample_instructions(rng, rng.randint(1, 2), FIXABLE_KINDS)
        drawn.append((if_single_prompt("Tell me about Saturn.", ins), ins))
    by_prompt = dict(drawn)
    assert sft
    for s in sft:
        ins = by_prompt[s["messages"][0]["content"]]
        assert verify({"instructions": ins}, s["messages"][1]["content"]) is True
        assert verify({"instructions": ins}, ANSWER) is not True


def test_rows_with_verifiers_code_or_turns_are_left_alone_and_seed_is_stable():
    metas = {"m": {"answer": "7"}, "i": {"instructions": [{"kind": "no_commas", "params": {}}]}}
    rows = [_row("m"), _row("i"), _row("c", kind="code"), {**_row("t"), "messages": _row("t")["messages"] * 2}]
    assert instruction_variants(rows, metas, 3, 0, 0.5)[2]["rows"] == 0
    assert instruction_variants([_row("x")], {}, 0, 0, 0.5)[0] == []
    one = instruction_variants([_row("x")], {}, 3, 0, 0.5)
    assert one == instruction_variants([_row("x")], {}, 3, 0, 0.5)
    assert one != instruction_variants([_row("x")], {}, 3, 1, 0.5)


def _judged(text, *kinds_params):
    instructions = [make_instruction(k, p) for k, p in kinds_params]
    return {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}],
        "meta": {"instructions": instructions},
    }


def test_failure_weights_count_each_instruction_of_the_round_own_prompts():
    scored = [
        _judged("all in lower case, sorry", ("all_uppercase", {})),
        _judged("Still, not shouting", ("all_uppercase", {}), ("no_commas", {})),
        _judged("No commas here", ("no_commas", {})),
        _row("plain"),  # no instructions: no evidence
        {"messages": "broken", "meta": {"instructions": [{"kind": "all_uppercase", "params": {}}]}},
        _judged("x", ("all_uppercase", {})) | {"meta": {"instructions": [{"kind": "no_such_kind", "params": {}}]}},
    ]
    w = kind_failure_weights(scored)
    assert set(w) == set(FIXABLE_KINDS)
    assert w["all_uppercase"] == (2 + 1) / (2 + 2)  # failed twice of two
    assert w["no_commas"] == (1 + 1) / (2 + 2)  # failed once of two
    assert w["title"] == 0.5  # never asked
    assert all(0 < v < 1 for v in w.values())


def test_weighted_draw_follows_the_weights_and_keeps_instructions_compatible():
    rng = random.Random(3)
    firsts = Counter(
        weighted_instructions(rng, 1, {"all_uppercase": 9.0, "no_commas": 1.0, "title": 0.0})[0]["kind"]
        for _ in range(2000)
    )
    assert firsts["title"] == 0 and 6 * firsts["no_commas"] < firsts["all_uppercase"]  # about 9:1
    for _ in range(200):
        kinds = [i["kind"] for i in weighted_instructions(rng, 2, {"all_uppercase": 1.0, "all_lowercase": 1.0})]
        assert len(kinds) == 1  # the two cases contradict each other: never drawn together


def test_focused_variants_teach_mostly_the_kinds_the_generator_fails():
    rows = [_row(f"p{i}") for i in range(20)]
    focus = {k: 0.05 for k in FIXABLE_KINDS} | {"all_uppercase": 0.95}
    sft, _, counts = instruction_variants(rows, {}, per_row=4, seed=0, min_judged_gap=0.5, focus=focus)
    _, _, uniform = instruction_variants(rows, {}, per_row=4, seed=0, min_judged_gap=0.5)
    assert counts["kind/all_uppercase"] > 0.5 * counts["variants"] > 0
    assert uniform["kind/all_uppercase"] < 0.25 * uniform["variants"]
    upper = [s for s in sft if "whole response in capital letters only" in s["messages"][0]["content"]]
    assert len(upper) == counts["kind/all_uppercase"] and all(s["messages"][1]["content"].isupper() for s in upper)


def test_a_variant_of_a_cut_answer_stays_cut_unless_its_fix_gives_it_an_end():
    cut = _row("c1")
    cut["messages"][1] = {**cut["messages"][1], "cut": True}
    sft, pairs, _ = instruction_variants([cut], {}, per_row=8, seed=3, min_judged_gap=0.5)
    assert sft and all(p["rejected"][0].get("cut") is True for p in pairs)
    for s in sft:
        text, marked = s["messages"][1]["content"], s["messages"][1].get("cut") is True
        # the answer ends "...studied it for decades." however its case or commas changed
        assert marked == text.rstrip().casefold().endswith("for decades."), text
    assert any(s["messages"][1].get("cut") for s in sft) and not all(s["messages"][1].get("cut") for s in sft)
    plain, _, _ = instruction_variants([_row("c1")], {}, per_row=8, seed=3, min_judged_gap=0.5)
    assert not any("cut" in s["messages"][1] for s in plain)


def test_a_row_with_a_second_answer_also_gets_two_responses_variants():
    second = "Saturn is the sixth planet from the Sun. It is a gas giant."
    rows = [_row(f"p{i}") for i in range(8)]
    seconds = {f"p{i}": second for i in range(4)}  # half the rows have another answer
    sft, _, counts = instruction_variants(rows, {}, per_row=8, seed=0, min_judged_gap=0.5, seconds=seconds)
    two = [s for s in sft if "six asterisks" in s["messages"][0]["content"]]
    assert counts["kind/two_responses"] == len(two) > 0
    for s in two:
        pid = s["prompt_id"].split("#")[0]
        assert pid in seconds  # drawn only where a second answer exists
        first, other = s["messages"][1]["content"].split("\n******\n")  # the separator on a line of its own
        assert other.lower().startswith("saturn is the sixth planet")  # the second answer, its form fixed
        assert verify({"instructions": [make_instruction("two_responses", {})]}, s["messages"][1]["content"])
    # without seconds the draw is the repairable kinds only, as before
    sft0, _, counts0 = instruction_variants(rows, {}, per_row=8, seed=0, min_judged_gap=0.5)
    assert counts0["kind/two_responses"] == 0


def test_second_answers_are_whole_and_a_cut_row_is_never_joined():
    from flywheel.judges.variants import second_answers

    chosen = [_row("p1"), _row("p2")]

    def scored(pid, text, reward=2.9, **extra):
        return {
            "prompt_id": pid,
            "messages": [chosen[0]["messages"][0], {"role": "assistant", "content": text}],
            "reward": reward,
            **extra,
        }

    rows = [
        scored("p1", "Saturn is a gas giant."),
        scored("p2", "Saturn is big.", finished=False),  # cut at the token limit
        scored("p2", "I cannot help with that."),  # a refusal
        scored("p2", "Saturn is far.", reward=1.0),  # far below the chosen answer's reward
    ]
    assert second_answers(rows, chosen) == {"p1": "Saturn is a gas giant."}
    cut_row = {
        **_row("p1"),
        "messages": [chosen[0]["messages"][0], {"role": "assistant", "content": ANSWER, "cut": True}],
    }
    sft, _, counts = instruction_variants(
        [cut_row], {}, per_row=16, seed=0, min_judged_gap=0.5, seconds={"p1": "Saturn is a gas giant."}
    )
    assert counts["kind/two_responses"] == 0 and sft
