"""HelpSteer2 rows -> conversations, token ids, targets and masks; collation."""

from __future__ import annotations

import pytest
import torch

from flywheel.errors import FlywheelError
from flywheel.reward.data import RewardExample, collate_reward, parse_prompt, reward_examples, row_messages


def test_multi_turn_helpsteer_prompt_becomes_alternating_messages():
    prompt = "What is 2+2?\n<extra_id_1>Assistant\n4\n<extra_id_1>User\nAnd 3+3?"
    assert parse_prompt(prompt) == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ]


def test_prompt_must_end_with_user():
    with pytest.raises(FlywheelError, match="end with a user turn"):
        parse_prompt("Hi\n<extra_id_1>Assistant\nHello")
    with pytest.raises(FlywheelError, match="non-empty"):
        parse_prompt("   ")


def test_row_messages_accepts_helpsteer_and_scored_rows():
    hs = {"prompt": "Hi", "response": "Hello!", "helpfulness": 3}
    scored = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        "scores": {"helpfulness": 3.0},
    }
    expected = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert row_messages(hs) == expected
    assert row_messages(scored) == expected
    with pytest.raises(FlywheelError, match="needs 'prompt' and 'response'"):
        row_messages({"messages": [{"role": "user", "content": "Hi"}]})


def test_collate_pads_right_and_keeps_targets_and_mask():
    a = RewardExample([5, 6, 7], [4.0, 3.0, 2.0, 1.0, 0.0], [True, True, True, True, True])
    b = RewardExample([8], [1.0, 0.0, 0.0, 0.0, 2.0], [True, False, False, False, True])
    batch = collate_reward([a, b], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["target"].shape == (2, 5) and batch["target"][0].tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert batch["mask"].dtype == torch.bool and batch["mask"][1].tolist() == [True, False, False, False, True]


def test_reward_examples_render_the_chat_template_and_mask_missing(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = [
        {
            "prompt": "Name a colour.",
            "response": "Blue.",
            "helpfulness": 4,
            "correctness": 4,
            "coherence": 4,
            "complexity": 0,
            "verbosity": 1,
        },
        {"prompt": "Name a colour.", "response": "Blue.", "helpfulness": 2, "correctness": None},
        {"prompt": "Name a colour.", "response": "x"},  # no label at all: skipped, not an error
    ]
    examples, skipped = reward_examples(tok, rows, max_len=512)
    assert skipped == 1 and len(examples) == 2
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}], tokenize=False
    )
    assert examples[0].input_ids == tok(text)["input_ids"]
    assert examples[1].mask == [True, False, False, False, False]
    assert examples[1].target == [2.0, 0.0, 0.0, 0.0, 0.0]
    # truncation keeps the end of the sequence, where the reward model pools
    short, _ = reward_examples(tok, rows[:1], max_len=4)
    assert short[0].input_ids == examples[0].input_ids[-4:]


def test_bad_attribute_names_the_row(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    with pytest.raises(FlywheelError, match="reward row 0: .*'helpfulness' is not a number"):
        reward_examples(tok, [{"prompt": "a", "response": "b", "helpfulness": "high"}], 64)
