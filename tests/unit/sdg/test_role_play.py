"""The dialogues stage's role-play loop and opener choice, against a scripted fake generator."""

from __future__ import annotations

from collections import Counter

from flywheel.sdg.dialogue import PERSONAS
from flywheel.sdg.pipelines import pick_openers, role_play
from flywheel.sdg.rows import make_prompt_row


class ScriptedAsk:
    def __init__(self, script: dict[str, dict[str, str]]):
        self.script, self.calls = script, []

    def __call__(self, step, requests):
        self.calls.append((step, requests))
        return {k: self.script.get(step, {})[k] for k, _, _ in requests if k in self.script.get(step, {})}


def test_role_play_alternates_cleans_user_turns_and_drops_broken_dialogues():
    openers = [
        make_prompt_row("open_qa", "Why does bread rise in the oven?"),
        make_prompt_row("open_qa", "How do tides work on the open ocean?"),
        make_prompt_row("math", "What is 3/4 of 12 apples in total?"),
    ]
    personas = [PERSONAS[0], PERSONAS[1], PERSONAS[2]]
    ask = ScriptedAsk(
        {
            "assistant_1": {
                "0": "Yeast makes carbon dioxide, which expands in the heat.",
                "1": "",
                "2": "3/4 of 12 is 9.",
            },
            "user_2": {"0": "User: Thank you, that was helpful. Why does salt slow the yeast down?", "2": "Thanks!"},
            "assistant_2": {"0": "Salt draws water away from the yeast cells."},
        }
    )
    skipped: Counter = Counter()
    done = role_play(ask, openers, personas, turns=2, skipped=skipped)
    assert [step for step, _ in ask.calls] == ["assistant_1", "user_2", "assistant_2"]
    assert len(done) == 1 and done[0][0]["id"] == openers[0]["id"] and done[0][1] == PERSONAS[0]
    assert done[0][2] == [
        {"role": "user", "content": "Why does bread rise in the oven?"},
        {"role": "assistant", "content": "Yeast makes carbon dioxide, which expands in the heat."},
        {"role": "user", "content": "Why does salt slow the yeast down?"},
        {"role": "assistant", "content": "Salt draws water away from the yeast cells."},
    ]
    assert skipped == Counter({"assistant_turn_unusable": 1, "user_turn_unusable": 1})
    # assistant turns are greedy ("answer"), the simulated user samples ("prompt") with roles flipped
    assert {s for _, _, s in ask.calls[0][1]} == {"answer"}
    key, msgs, sampling = ask.calls[1][1][0]
    assert sampling == "prompt" and msgs[0]["role"] == "system" and PERSONAS[0]["description"] in msgs[0]["content"]
    assert msgs[-1] == {"role": "user", "content": "Yeast makes carbon dioxide, which expands in the heat."}
    assert msgs[-2] == {"role": "assistant", "content": "Why does bread rise in the oven?"}


def test_role_play_three_turns_ends_on_assistant():
    ask = ScriptedAsk(
        {f"assistant_{t}": {"0": f"Answer number {t} is here."} for t in (1, 2, 3)}
        | {f"user_{t}": {"0": f"Could you tell me more about point {t}?"} for t in (2, 3)}
    )
    done = role_play(ask, [make_prompt_row("open_qa", "Tell me about volcanoes please.")], [PERSONAS[3]], 3, Counter())
    roles = [m["role"] for m in done[0][2]]
    assert roles == ["user", "assistant"] * 3


def test_pick_openers_takes_single_turn_training_prompts():
    rows = [make_prompt_row("open_qa", f"Question {i} about rivers and lakes?") for i in range(4)]
    rows.append(
        make_prompt_row(
            "two_turn",
            [
                {"role": "user", "content": "a question here"},
                {"role": "assistant", "content": "an answer"},
                {"role": "user", "content": "a follow-up question"},
            ],
        )
    )
    rows[0]["split"] = "heldout"
    openers, personas = pick_openers(rows, 10, ["skeptic", "planner"], seed=0)
    assert sorted(r["id"] for r in openers) == sorted(r["id"] for r in rows[1:4])
    assert len(personas) == 3 and {p["name"] for p in personas} <= {"skeptic", "planner"}
    assert pick_openers(rows, 2, [], seed=0)[0] == openers[:2]
