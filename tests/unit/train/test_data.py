"""Chat-template tokenization with assistant-only labels, truncation, collation, batching and mixing."""

from __future__ import annotations

import pytest
import torch

from flywheel.errors import FlywheelError
from flywheel.train import data

DIALOGUE = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello there"},
    {"role": "user", "content": "q2"},
    {"role": "assistant", "content": "a2"},
]


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def _labelled_text(tok, enc: data.Encoded) -> list[str]:
    """Decode each maximal run of labelled tokens."""
    runs, cur = [], []
    for t, lab in zip(enc.input_ids, enc.labels, strict=True):
        if lab == -100:
            if cur:
                runs.append(tok.decode(cur))
            cur = []
        else:
            assert lab == t
            cur.append(t)
    if cur:
        runs.append(tok.decode(cur))
    return runs


def test_all_assistant_turns_are_labelled_and_nothing_else(tok):
    enc = data.encode_dialogue(tok, DIALOGUE)
    assert len(enc.input_ids) == len(enc.labels)
    # SmolLM2's template closes each turn with "<|im_end|>\n": the answer includes it, so the model learns to stop
    assert _labelled_text(tok, enc) == ["hello there<|im_end|>\n", "a2<|im_end|>\n"]
    # the default system prompt, user turns and "<|im_start|>assistant\n" headers carry no loss
    full = tok.apply_chat_template(DIALOGUE, tokenize=False)
    assert tok.decode(enc.input_ids) == full
    assert tok.decode(enc.input_ids[enc.response_start :]) == "a2<|im_end|>\n"


def test_last_only_labels_the_final_turn(tok):
    enc = data.encode_dialogue(tok, DIALOGUE, last_only=True)
    assert _labelled_text(tok, enc) == ["a2<|im_end|>\n"]


def test_a_cut_answer_teaches_its_words_but_no_end_of_turn(tok):
    cut = [DIALOGUE[0], {**DIALOGUE[1], "cut": True}, DIALOGUE[2], DIALOGUE[3]]
    enc = data.encode_dialogue(tok, cut)
    assert _labelled_text(tok, enc) == ["hello there", "a2<|im_end|>\n"]
    # the text is the same: only the labels change
    assert enc.input_ids == data.encode_dialogue(tok, DIALOGUE).input_ids
    last = data.encode_dialogue(tok, [DIALOGUE[0], {**DIALOGUE[1], "cut": True}], last_only=True)
    assert _labelled_text(tok, last) == ["hello there"]


def _word_tokenizer(template: str):
    """A tiny fast tokenizer with its own template (no offsets trickery from a real vocabulary)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[UNK]", "<pad>", "<s>", "</s>", "USER:", "BOT:", "hi", "hello", "there", "q2", "a2", "\n"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="removed")
    fast = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="[UNK]")
    fast.chat_template = template
    return fast


def test_other_template_without_generation_tags():
    # "BOT:" header comes from add_generation_prompt; the answer ends with " </s>"
    template = (
        "{% for m in messages %}{% if m['role'] == 'user' %}USER: {{ m['content'] }} {% else %}BOT: "
        "{{ m['content'] }} </s> {% endif %}{% endfor %}{% if add_generation_prompt %}BOT: {% endif %}"
    )
    tok = _word_tokenizer(template)
    enc = data.encode_dialogue(tok, DIALOGUE)
    words = tok.convert_ids_to_tokens(enc.input_ids)
    assert words == ["USER:", "hi", "BOT:", "hello", "there", "</s>", "USER:", "q2", "BOT:", "a2", "</s>"]
    labelled = [w for w, lab in zip(words, enc.labels, strict=True) if lab != -100]
    assert labelled == ["hello", "there", "</s>", "a2", "</s>"]
    assert enc.response_start == 9


def test_template_that_rewrites_history_is_refused():
    # prints the number of messages first: a prefix rendering is never a prefix of the full text
    tok = _word_tokenizer("{{ messages|length }} {% for m in messages %}{{ m['content'] }} {% endfor %}")
    with pytest.raises(FlywheelError, match="prefix-stable"):
        data.encode_dialogue(tok, DIALOGUE)
    with pytest.raises(FlywheelError, match="assistant turn"):
        data.encode_dialogue(tok, [{"role": "assistant", "content": "x"}])


def _enc(prompt_len: int, resp_len: int) -> data.Encoded:
    ids = list(range(prompt_len + resp_len))
    return data.Encoded(ids, [-100] * prompt_len + ids[prompt_len:], prompt_len)


def test_left_prompt_truncation_keeps_the_response():
    enc = data.truncate(_enc(30, 10), 20, "left_prompt")
    # 10 response tokens kept whole, prompt cut to its last 10 tokens: ids 20..39
    assert enc.input_ids == list(range(20, 40)) and enc.response_start == 10
    assert enc.labels == [-100] * 10 + list(range(30, 40))
    # response alone too long: keep MIN_PROMPT_TOKENS (8) of prompt (ids 22..29), response cut right (30..41)
    enc = data.truncate(_enc(30, 50), 20, "left_prompt")
    assert enc.input_ids == list(range(22, 42)) and enc.response_start == 8
    # right policy: plain head
    assert data.truncate(_enc(30, 10), 20, "right").input_ids == list(range(20))
    # short sequences untouched
    assert data.truncate(_enc(3, 2), 20, "left_prompt").input_ids == [0, 1, 2, 3, 4]


def test_pair_truncation_shares_the_prompt():
    c, r = data.truncate_pair(_enc(30, 10), _enc(30, 4), 20, "left_prompt")
    # room for the longer answer (10): both keep the same last 10 prompt tokens (20..29)
    assert c.input_ids[:10] == r.input_ids[:10] == list(range(20, 30))
    assert len(c.input_ids) == 20 and len(r.input_ids) == 14


def test_collate_pairs_puts_chosen_first_and_pads_right():
    ex = [
        data.PairExample(_enc(2, 2), _enc(2, 1), 3.0, 1.0, 7),
        data.PairExample(_enc(1, 1), _enc(1, 3), 2.0, 0.5, 9),
    ]
    b = data.collate_pairs(ex, pad_id=99)
    assert b["input_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 99, 99], [0, 1, 2, 99], [0, 1, 2, 3]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert b["labels"].tolist() == [[-100, -100, 2, 3], [-100, 1, -100, -100], [-100, -100, 2, -100], [-100, 1, 2, 3]]
    assert b["reward_chosen"].tolist() == [3.0, 2.0] and b["index"].tolist() == [7, 9]


def test_bucketing_covers_everything_once_and_groups_lengths():
    lengths = [5, 50, 6, 49, 7, 48, 8, 47, 9, 10]
    batches = data.bucket_batches(lengths, batch_size=2, seed=3, window=5)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert batches == data.bucket_batches(lengths, batch_size=2, seed=3, window=5)
    assert batches != data.bucket_batches(lengths, batch_size=2, seed=4, window=5)
    # one window spans the whole set: pairs of neighbours in length, {50, 49} {48, 47} {10, 9} {8, 7} {6, 5}
    for b in batches:
        assert abs(lengths[b[0]] - lengths[b[1]]) <= 2


def test_shards_have_equal_counts_and_cover_all_batches():
    batches = [[i] for i in range(5)]
    s0, s1 = data.shard_batches(batches, 0, 2), data.shard_batches(batches, 1, 2)
    assert s0 == [[0], [2], [4]] and s1 == [[1], [3], [0]]  # batch 0 reused to even out the last step


def test_mix_sft_adds_a_seeded_share_of_code():
    general = [{"id": f"g{i}"} for i in range(10)]
    code = [{"id": f"c{i}"} for i in range(100)]
    mixed = data.mix_sft(general, code, 0.02, seed=0)
    assert len(mixed) == 12 and sum(r["id"].startswith("c") for r in mixed) == 2
    assert mixed == data.mix_sft(general, code, 0.02, seed=0)
    assert len(data.mix_sft(general, code[:10], 0.02, seed=0)) == 11  # 0.2 rounds to 0 -> at least one
    assert len(data.mix_sft(general, code, 0.0, seed=0)) == 10


def test_examples_from_rows(tok):
    rows = [
        {
            "prompt": DIALOGUE[:3],
            "chosen": [{"role": "assistant", "content": "yes"}],
            "rejected": [{"role": "assistant", "content": "no no"}],
            "reward_chosen": 3.5,
            "reward_rejected": 1,
        }
    ]
    (pair,) = data.pair_examples(tok, rows, max_len=64, truncation="left_prompt")
    assert _labelled_text(tok, pair.chosen) == ["yes<|im_end|>\n"]
    assert _labelled_text(tok, pair.rejected) == ["no no<|im_end|>\n"]
    assert (pair.reward_chosen, pair.reward_rejected, pair.index) == (3.5, 1.0, 0)
    c, r = pair.chosen, pair.rejected
    assert c.input_ids[: c.response_start] == r.input_ids[: r.response_start]
    with pytest.raises(FlywheelError, match="preference row 0"):
        data.pair_examples(tok, [{**rows[0], "chosen": [{"role": "user", "content": "x"}]}], 64, "left_prompt")
    with pytest.raises(FlywheelError, match="sft row 1"):
        data.sft_examples(tok, [{"messages": DIALOGUE}, {"messages": "oops"}], 64, "left_prompt")
    examples, skipped = data.sft_examples(tok, [{"messages": DIALOGUE}], 64, "left_prompt")
    assert skipped == 0 and len(examples[0].input_ids) <= 64
    assert torch.equal(data.collate_sft(examples, 2)["input_ids"][0], torch.tensor(examples[0].input_ids))
