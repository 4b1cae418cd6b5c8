"""The prompts stage's pipelines, filters and step streaming, run against a scripted fake generator."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from flywheel.config import load_config
from flywheel.errors import FlywheelError
from flywheel.sdg.config import SDGConfig
from flywheel.sdg.rows import make_prompt_row
from flywheel.stages.asker import StepAsker, even_batches
from flywheel.stages.common import Context
from flywheel.stages.prompts import quality_filter, read_documents, synthesize
from flywheel.store import Store

DOC = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall."


class FakeAsk:
    """Replies by request key from a script; unknown keys get no reply (as if the engine dropped them)."""

    def __init__(self, script: dict[str, str]):
        self.script, self.steps, self.requests = script, [], {}

    def __call__(self, step, requests):
        self.steps.append(step)
        for key, messages, sampling in requests:
            self.requests[key] = (messages, sampling)
        return {k: self.script[k] for k, _, _ in requests if k in self.script}


SCRIPT = {
    "macro": "1. Gardening\n2. Cooking\n",
    "sub/0": "Sure! Here are two subtopics:\n1. Baking bread\n2. Knife skills",
    "sub/1": "",
    "q/0": "1. How do I keep a cast iron pan from rusting?\n2. What spices go well with lentils?",
    "q/1": "ok",
    "q/2": "1. Why does bread dough need to rest before baking?",
    "q/3": "- What spices go well with lentils?",
    "w/0": "1. Write a poem about the smell of fresh bread in the morning.",
    "refine/0": "Here is the rewritten question:\n\nHow do I keep a cast iron pan from rusting when I live by the sea?",
    "math/0/0": "Problem: A recipe needs 3/4 cup of sugar per batch. How much sugar do 6 batches need?\n\n"
    "Solution: 4.5 cups",
    "code/0/0": "Sure",
    "closed_qa/0/0": "In which year was the tower completed?",
    "two_turn/0": "Python is a good choice because it reads almost like English.",
    "followup/0": "Thanks! Can you suggest a beginner project in Python?",
}


def small_sdg(**kw) -> SDGConfig:
    base = dict(
        topics=["cooking"],
        n_subtopics=2,
        questions_per_subtopic=2,
        doc_types=["poem"],
        math_keywords=["fractions"],
        code_keywords=["sorting"],
        if_fraction=0.0,
        two_turn_count=1,
    )
    return SDGConfig(**{**base, **kw})


def test_synthesize_runs_every_pipeline_in_waves_and_counts_skips():
    ask = FakeAsk(SCRIPT)
    rows, skipped = synthesize(ask, small_sdg(), [DOC], ["What is a good first programming language?"])
    assert ask.steps == [
        "problems_closed_qa",
        "topics",
        "subtopics",
        "questions_writing",
        "refine",
        "answers",
        "followups",
    ]
    texts = [(r["kind"], r["messages"][-1]["content"]) for r in rows]
    assert texts[0] == ("math", "A recipe needs 3/4 cup of sugar per batch. How much sugar do 6 batches need?")
    assert texts[1][0] == "closed_qa" and DOC in texts[1][1] and "In which year was the tower completed?" in texts[1][1]
    assert texts[2:7] == [
        ("open_qa", "How do I keep a cast iron pan from rusting when I live by the sea?"),
        ("open_qa", "What spices go well with lentils?"),
        ("open_qa", "Why does bread dough need to rest before baking?"),
        ("open_qa", "What spices go well with lentils?"),
        ("writing", "Write a poem about the smell of fresh bread in the morning."),
    ]
    assert rows[7]["kind"] == "two_turn"
    assert [m["role"] for m in rows[7]["messages"]] == ["user", "assistant", "user"]
    assert rows[7]["messages"][2]["content"] == "Can you suggest a beginner project in Python?"
    assert len(rows) == 8
    # (poem, Gardening) got no reply: one writing list unparsed
    assert skipped == Counter(
        {
            "subtopics_unparsed": 1,
            "questions_unparsed": 1,
            "writing_unparsed": 1,
            "code_unparsed": 1,
            "refine_unparsed": 4,
        }
    )
    assert rows[2]["meta"]["draft"] == "How do I keep a cast iron pan from rusting?"
    assert rows[2]["lineage"]["template"] == "questions_prompt+refine"
    assert rows[3]["meta"] == {"topic": "cooking", "subtopic": "cooking", "refined": False}
    # merged topics: the user's "cooking" first, the generated "Cooking" dropped as a duplicate
    assert ask.requests["sub/1"][0][0]["content"].count('"Gardening"') == 1
    assert ask.requests["two_turn/0"][1] == "answer" and ask.requests["q/0"][1] == "prompt"


def test_synthesize_survives_all_malformed_output():
    rows, skipped = synthesize(FakeAsk({}), small_sdg(), [DOC], ["What is a good first programming language?"])
    assert rows == []
    assert skipped == Counter(
        {
            "math_unparsed": 1,
            "code_unparsed": 1,
            "closed_qa_unparsed": 1,
            "macro_topics_unparsed": 1,
            "subtopics_unparsed": 1,
            "questions_unparsed": 1,
            "writing_unparsed": 1,
            "two_turn_answer_unusable": 1,
        }
    )


def test_synthesize_only_runs_enabled_pipelines():
    ask = FakeAsk(SCRIPT)
    rows, _ = synthesize(ask, small_sdg(pipelines=["math"]), [DOC], ["What is a good first language?"])
    assert [r["kind"] for r in rows] == ["math"]
    assert "topics" not in ask.steps and all(not k.startswith(("closed_qa", "code", "two_turn")) for k in ask.requests)


def test_instruction_following_shapes():
    sdg = small_sdg(
        pipelines=["math", "if_single", "if_multi", "if_revision"],
        if_fraction=1.0,
        instructions_per_prompt=1,
        if_kinds=["no_commas"],
        math_keywords=["fractions", "primes"],
    )
    rows, skipped = synthesize(FakeAsk(SCRIPT), sdg, [], [])
    # two math bases (one parsed, "primes" got no reply) -> one IF plan, the first shape: single-turn
    assert [r["kind"] for r in rows] == ["math", "if_single"]
    assert rows[1]["messages"][0]["content"].endswith("Do not use a single comma anywhere in your response.")
    assert rows[1]["meta"]["instructions"][0]["kind"] == "no_commas"
    assert rows[1]["lineage"]["instruction_kinds"] == ["no_commas"]
    assert skipped["math_unparsed"] == 1


def test_multi_turn_and_revision_need_an_answer():
    import random

    from flywheel.sdg.pipelines import Item, if_answer_requests, if_rows, plan_if

    items = [
        Item("open_qa", f"Question number {w} about how plants grow?", {}, "questions_prompt")
        for w in ("one", "two", "three")
    ]
    sdg = SDGConfig(if_fraction=1.0, instructions_per_prompt=1, if_kinds=["all_lowercase"])
    plans = plan_if(items, sdg, random.Random(0), Counter())
    assert [p.shape for p in plans] == ["if_single", "if_multi", "if_revision"]
    reqs = if_answer_requests(plans)
    assert [k for k, _, _ in reqs] == ["if/1", "if/2"]
    multi_first = reqs[0][1][0]["content"]
    assert multi_first.startswith("For this and every later question") and plans[1].base.text in multi_first
    assert reqs[1][1] == [{"role": "user", "content": plans[2].base.text}]
    skipped: Counter = Counter()
    rows = if_rows(
        plans, {"if/1": "plants grow toward light.", "if/2": "I'm sorry, but I can't help with that."}, skipped
    )
    assert [r["kind"] for r in rows] == ["if_single", "if_multi"]
    assert [m["role"] for m in rows[1]["messages"]] == ["user", "assistant", "user"]
    assert rows[1]["messages"][1]["content"] == "plants grow toward light."
    assert rows[1]["messages"][2]["content"] == plans[1].second
    assert skipped == Counter({"if_revision_answer_unusable": 1})


def test_quality_filter_counts_each_filter():
    vaccines = "ow do vaccines train the immune system to recognise and fight infections caused by new viruses"
    texts = [
        "Hi",
        "Explain what <|im_start|> means in chat templates, please.",
        "I'm sorry, but I cannot write that essay for you.",
        f"H{vaccines} and bacteria?",
        f"h{vaccines} and bacteria",
        f"H{vaccines} and bacteria today?",
        "Write a haiku about autumn leaves falling in the rain.",
    ]
    rows = [make_prompt_row("open_qa", t) for t in texts]
    removed: Counter = Counter()
    kept = list(quality_filter(iter(rows), SDGConfig(), removed))
    assert [r["messages"][0]["content"] for r in kept] == [texts[3], texts[6]]
    assert removed == Counter({"length": 1, "format": 1, "refusal": 1, "exact_dup": 1, "near_dup": 1})


@pytest.mark.parametrize(
    "n,size,actors,expected",
    [
        (10, 4, 2, [3, 3, 2, 2]),
        (3, 64, 2, [2, 1]),
        (1, 64, 2, [1]),
        (0, 8, 2, []),
        (64, 32, 2, [32, 32]),
        (65, 32, 2, [17, 16, 16, 16]),
        (5, 8, 1, [5]),
    ],
)
def test_even_batches(n, size, actors, expected):
    batches = even_batches(list(range(n)), size, actors)
    assert [len(b) for b in batches] == expected
    assert [x for b in batches for x in b] == list(range(n))


def test_read_documents(tmp_path):
    good = tmp_path / "docs.jsonl"
    good.write_text('{"text": "First document."}\n\n{"text": "Second one.", "source": "x"}\n')
    assert read_documents(str(good)) == ["First document.", "Second one."]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(FlywheelError, match="bad.jsonl:2"):
        read_documents(str(bad))


class FakePool:
    """Answers every conversation with its last message reversed; records the job keys it ran."""

    def __init__(self):
        self.keys = []

    def map(self, method, jobs, on_result):
        assert method == "chat"
        for key, (convs, _sampling, n) in jobs:
            self.keys.append(key)
            on_result(
                key, {"texts": [[c[-1]["content"][::-1]] * n for c in convs], "tokens": 3 * len(convs), "seconds": 0.5}
            )


def _ctx(tmp_path) -> Context:
    return Context(cfg=load_config(None), store=Store(str(tmp_path / "run")), round=1)


def test_step_asker_streams_parts_and_resumes(tmp_path):
    ctx = _ctx(tmp_path)
    reqs = [(f"k{i}", [{"role": "user", "content": f"abc{i}"}], "prompt" if i % 2 else "answer") for i in range(5)]
    samplings = {"prompt": {"temperature": 0.7}, "answer": {"temperature": 0.0}}
    pool = FakePool()
    ask = StepAsker(ctx, "prompts", "fp1", lambda: pool, samplings, batch_size=2, num_actors=2)
    replies = ask("step", reqs)
    assert replies == {"k0": "0cba", "k1": "1cba", "k2": "2cba", "k3": "3cba", "k4": "4cba"}
    # "answer" (3 requests) -> batches of 2+1, "prompt" (2) -> 1+1: four parts, one per batch
    step_dir = os.path.join(str(tmp_path / "run"), "round-001", "prompts", "fp1", "steps", "step")
    parts = sorted(os.listdir(step_dir))
    assert [p[:10] for p in parts] == [f"part-0000{i}" for i in range(4)] and all(p.endswith(".jsonl") for p in parts)
    assert ask.metrics()["gen_tokens"] == 15
    # a killed attempt left three of the four parts: only the missing batch is generated again
    os.remove(os.path.join(step_dir, parts[2]))
    pool2 = FakePool()
    again = StepAsker(ctx, "prompts", "fp1", lambda: pool2, samplings, batch_size=2, num_actors=2)
    assert again("step", reqs) == replies and pool2.keys == [2]
    # everything on disk: the pool is not even started
    done = StepAsker(ctx, "prompts", "fp1", lambda: 1 / 0, samplings, batch_size=2, num_actors=2)
    assert done("step", reqs) == replies


def test_resume_with_another_batch_split_loses_no_request(tmp_path):
    """Killed after 3 of 4 parts at batch 2 / 2 actors, resumed at batch 5 / 1 actor: every request answered."""
    ctx = _ctx(tmp_path)
    reqs = [(f"k{i}", [{"role": "user", "content": f"abc{i}"}], "answer") for i in range(8)]
    samplings = {"answer": {"temperature": 0.0}}
    first = StepAsker(ctx, "prompts", "fp1", FakePool, samplings, batch_size=2, num_actors=2)
    replies = first("step", reqs)
    step_dir = os.path.join(str(tmp_path / "run"), "round-001", "prompts", "fp1", "steps", "step")
    os.remove(os.path.join(step_dir, sorted(os.listdir(step_dir))[-1]))  # the killed attempt's missing part
    pool = FakePool()
    again = StepAsker(ctx, "prompts", "fp1", lambda: pool, samplings, batch_size=5, num_actors=1)
    assert again("step", reqs) == replies  # all 8, each once: none of the old split's parts reused by position
    assert sorted(pool.keys) == [0, 1]


def test_interleave_deals_kinds_round_robin():
    from flywheel.stages.prompts import interleave

    rows = [{"kind": k, "n": i} for i, k in enumerate(["file", "file", "file", "math", "open_qa", "open_qa"])]
    assert [(r["kind"], r["n"]) for r in interleave(rows)] == [
        ("file", 0),
        ("math", 3),
        ("open_qa", 4),
        ("file", 1),
        ("open_qa", 5),
        ("file", 2),
    ]


def test_a_prompt_longer_than_the_context_is_dropped_counted_and_named(tokenizer_dir, caplog):
    from flywheel.stages.prompts import _token_counter, within_context

    count = _token_counter(tokenizer_dir)
    short = {"id": "p-1", "messages": [{"role": "user", "content": "Name a prime."}], "lineage": {"source": "a.jsonl"}}
    long = {"id": "p-2", "messages": [{"role": "user", "content": "word " * 600}], "lineage": {"source": "b.jsonl"}}
    assert count(short["messages"]) < 40 < 600 <= count(long["messages"])
    removed: Counter = Counter()
    with caplog.at_level("WARNING", logger="flywheel"):
        kept = within_context([short, long, short], count, 1024 - 512, removed)
    assert [r["id"] for r in kept] == ["p-1", "p-1"] and removed == Counter(too_long=1)
    assert "p-2 from b.jsonl" in caplog.text and "dropped" in caplog.text
    assert within_context([long], count, 2048, Counter()) == [long]  # a larger context keeps it
