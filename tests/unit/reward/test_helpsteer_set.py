"""The shipped HelpSteer2-format set: reproducible from code, schema-valid, labels true by construction."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from flywheel.judges.attributes import ATTRIBUTES
from flywheel.judges.verifiers import verify
from flywheel.reward import helpsteer_set


@pytest.fixture(scope="module")
def built():
    return helpsteer_set.build()


def _shipped(name: str) -> list[dict]:
    path = resources.files("flywheel") / "data" / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_shipped_files_are_what_the_builder_writes(built):
    train, held = built
    assert _shipped("helpsteer_train.jsonl") == train
    assert _shipped("helpsteer_heldout.jsonl") == held


def test_schema_and_ranges(built):
    for row in built[0] + built[1]:
        assert isinstance(row["prompt"], str) and isinstance(row["response"], str) and row["response"]
        assert all(isinstance(row[a], int) and 0 <= row[a] <= 4 for a in ATTRIBUTES)
        assert row["kind"] in ("math", "instruction", "chat")


def test_split_is_by_prompt(built):
    train, held = built
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    assert 1000 <= len(train) <= 2000 and 200 <= len(held) <= 500


def test_correctness_agrees_with_the_verifiers(built):
    # every math or instruction row: correctness 4 exactly when the verifier accepts the response
    checked = 0
    for row in built[0] + built[1]:
        if row["kind"] in ("math", "instruction"):
            assert verify(row["meta"], row["response"]) is (row["correctness"] == 4), row
            checked += 1
    assert checked > 1000


def test_multi_turn_prompts_use_helpsteer_markers(built):
    multi = [r for r in built[0] if "<extra_id_1>Assistant" in r["prompt"]]
    assert multi and all(r["prompt"].count("<extra_id_1>User") == 1 for r in multi)
