"""Instruction variants: plain prompts' chosen responses become verified IF rows and verifier pairs."""

from __future__ import annotations

from flywheel.judges.variants import instruction_variants
from flywheel.judges.verifiers import verify

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
