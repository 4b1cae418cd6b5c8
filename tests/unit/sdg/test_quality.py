"""Dedup, near-dedup (MinHash + LSH), length, format and refusal filters."""

from flywheel.sdg.quality import (
    ExactDeduper,
    NearDeduper,
    exact_dedup,
    format_filter,
    is_refusal,
    is_well_formed,
    last_text,
    length_filter,
    lsh_params,
    near_dedup,
    normalize_text,
    refusal_filter,
    row_text,
    shingles,
)

BASE = (
    "Explain how a city can plan its public transport network so that buses trams and trains "
    "connect well reduce waiting times for commuters lower emissions across the region and stay "
    "affordable for families who live far from the centre and travel every single day"
)


def _row(text):
    return {"id": "x", "messages": [{"role": "user", "content": text}]}


def test_normalize_and_exact_dedup():
    assert normalize_text("  Hello,   WORLD!\n") == "hello world"
    kept, removed = exact_dedup(["Hello, world!", "hello world", "Other text", "HELLO WORLD."])
    assert kept == ["Hello, world!", "Other text"] and removed == 2
    deduper = ExactDeduper()
    assert deduper.add("a b") is True and deduper.add("A  B!") is False


def test_exact_dedup_on_rows_and_generators():
    rows = (_row(t) for t in ["Same prompt", "same prompt.", "Different"])
    kept, removed = exact_dedup(rows)
    assert [r["messages"][0]["content"] for r in kept] == ["Same prompt", "Different"]
    assert removed == 1


def test_shingles_and_lsh_params_by_hand():
    assert shingles("The cat sat on the mat", 3) == {"the cat sat", "cat sat on", "sat on the", "on the mat"}
    assert shingles("Two words", 3) == {"two words"}
    assert shingles("", 3) == set()
    # (1/7)^(1/9) = 0.806 is the closest S-curve midpoint to 0.8 for 64 permutations.
    assert lsh_params(64, 0.8) == (7, 9)
    # (1/16)^(1/4) = 0.5 exactly.
    assert lsh_params(64, 0.5) == (16, 4)


def test_near_dedup_removes_one_word_edits_keeps_different_texts():
    near = BASE.replace("every single day", "every single week")
    other = "Write a short poem about a fox who learns to swim in a cold mountain lake at dawn"
    kept, removed = near_dedup(iter([BASE, near, other, BASE]), threshold=0.8, num_perm=64)
    assert kept == [BASE, other] and removed == 2


def test_near_dedup_threshold_one_needs_identical_shingles():
    near = BASE.replace("every single day", "every single week")
    kept, removed = near_dedup([BASE, near], threshold=1.0, num_perm=64)
    assert kept == [BASE, near] and removed == 0


def test_near_deduper_signature_properties():
    d = NearDeduper(threshold=0.8, num_perm=32, seed=7)
    sig = d.signature(BASE)
    assert len(sig) == 32
    assert sig == NearDeduper(threshold=0.8, num_perm=32, seed=7).signature(BASE)
    assert NearDeduper.similarity(sig, sig) == 1.0
    assert NearDeduper.similarity((1, 2, 3, 4), (1, 0, 3, 0)) == 0.5
    assert d.add("") is True and d.add("   ") is False
    assert d.add("日本語 の 文章 です") is True


def test_length_filter():
    kept, removed = length_filter(["hi", "  hello there  ", "x" * 50], 5, 20)
    assert kept == ["  hello there  "] and removed == 2


def test_format_filter_and_checks():
    assert is_well_formed("Explain the {name} placeholder in Python f-strings.")
    assert not is_well_formed("Write about {topic} please")
    assert not is_well_formed("<|im_start|>user hello")
    assert not is_well_formed("12345 !!!")
    assert not is_well_formed("")
    assert not is_well_formed("same line\nsame line\nsame line")
    assert is_well_formed('def f(x):\n    return f"{x}"')
    kept, removed = format_filter([_row("Fine prompt"), _row("[INST] leaked [/INST]")])
    assert len(kept) == 1 and removed == 1


def test_refusal_filter_uses_last_message():
    rows = [
        {
            "messages": [
                {"role": "user", "content": "I cannot sleep"},
                {"role": "assistant", "content": "Try a fixed bedtime."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Tell me"},
                {"role": "assistant", "content": "I'm sorry, but I can't help with that."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": "As an AI, I have no opinions."},
            ]
        },
    ]
    kept, removed = refusal_filter(rows)
    assert kept == rows[:1] and removed == 2
    assert is_refusal("I am unable to do that") and not is_refusal("Cannot-do attitude is bad")


def test_text_keys():
    row = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    assert row_text(row) == "a\nb" and last_text(row) == "b"
    assert row_text(42) == "" and last_text({"messages": []}) == "" and last_text("s") == "s"
