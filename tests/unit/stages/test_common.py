"""Stage plumbing without engines: prompt files, skip-by-fingerprint, failure markers, status."""

import json

import pytest

from flywheel.config import load_config
from flywheel.errors import FlywheelError
from flywheel.rounds import stage_list, status
from flywheel.stages.common import Context, read_output, read_prompt_file, run_once, write_parts
from flywheel.store import Store


def _ctx(tmp_path, round_idx=1):
    return Context(cfg=load_config(None, [f"run.root={tmp_path}"]), store=Store(str(tmp_path)), round=round_idx)


def test_prompt_file_accepts_messages_or_prompt(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(
        json.dumps({"prompt": "Hi there?"})
        + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "Q"}], "kind": "code", "id": "x"})
        + "\n"
    )
    rows = read_prompt_file(str(f))
    assert [r["messages"][-1]["content"] for r in rows] == ["Hi there?", "Q"]
    assert rows[1]["id"] == "x" and rows[1]["kind"] == "code" and rows[0]["split"] == "train"


def test_prompt_file_rejects_rows_without_a_final_user_turn(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"messages": [{"role": "assistant", "content": "A"}]}) + "\n")
    with pytest.raises(FlywheelError, match=r"p\.jsonl:1: 'messages' must end with a user turn"):
        read_prompt_file(str(f))


def test_prompt_file_names_bad_turns_and_duplicate_ids(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"messages": ["hi"]}) + "\n")
    with pytest.raises(FlywheelError, match=r"p\.jsonl:1: each turn of 'messages' needs string 'role' and 'content'"):
        read_prompt_file(str(f))
    user = {"role": "user", "content": "Q"}
    rows = [{"id": "a", "messages": [user]}, {"id": "b", "prompt": "R"}, {"id": "a", "prompt": "S"}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(FlywheelError, match=r"p\.jsonl:3: duplicate prompt id 'a' \(first on line 1\)"):
        read_prompt_file(str(f))
    f.write_text("".join(json.dumps({"prompt": "same"}) + "\n" for _ in range(3)))  # no ids: repeats dropped
    assert len(read_prompt_file(str(f))) == 1


def test_builtin_prompt_files_load():
    seed = read_prompt_file("builtin:seed_prompts.jsonl")
    held = read_prompt_file("builtin:heldout_prompts.jsonl")
    assert len(seed) == 40 and len(held) == 24
    assert not {r["id"] for r in seed} & {r["id"] for r in held}


def test_run_stage_skips_when_fingerprint_matches_and_reruns_when_not(tmp_path):
    ctx = _ctx(tmp_path)
    calls = []

    def body(fp):
        calls.append(fp)
        return {"rows": write_parts(ctx, "prompts", fp, [{"i": i} for i in range(3)], part_size=2)}, {"n": 3}

    first = run_once(ctx, "prompts", ["a"], body)
    again = run_once(ctx, "prompts", ["a"], body)
    assert len(calls) == 1 and again["skipped"] and again["fingerprint"] == first["fingerprint"]
    assert [r["i"] for r in read_output(ctx, first, "rows")] == [0, 1, 2]
    assert [p["count"] for p in first["outputs"]["rows"]["parts"]] == [2, 1]
    changed = run_once(ctx, "prompts", ["b"], body)
    assert len(calls) == 2 and changed["fingerprint"] != first["fingerprint"]


def test_failed_stage_is_marked_and_reported_by_status(tmp_path):
    ctx = _ctx(tmp_path)

    def boom(fp):
        raise FlywheelError("broken input")

    with pytest.raises(FlywheelError):
        run_once(ctx, "judge", ["x"], boom)
    assert ctx.store.manifest(1, "judge") is None
    run_once(ctx, "prompts", ["x"], lambda fp: ({}, {}))
    rows = status(ctx.cfg, ctx.store)
    assert rows[0]["stages"]["prompts"] == "done"
    assert rows[0]["stages"]["judge"] == "failed"
    assert rows[0]["stages"]["responses"] == "pending"

    # a newer attempt (another config) fails: the older published result does not make the stage "done"
    with pytest.raises(FlywheelError):
        run_once(ctx, "prompts", ["changed"], boom)
    assert ctx.store.manifest(1, "prompts") is not None
    assert status(ctx.cfg, ctx.store)[0]["stages"]["prompts"] == "failed"
    run_once(ctx, "prompts", ["changed"], lambda fp: ({}, {}))
    assert status(ctx.cfg, ctx.store)[0]["stages"]["prompts"] == "done"


def test_stage_list_expands_training():
    cfg = load_config(None, ["train.rpo.iterations=3"])
    names = stage_list(cfg)
    assert names[names.index("datasets") + 1 : names.index("evaluate")] == [
        "sft_code",
        "sft",
        "dpo",
        "rpo_1",
        "rpo_2",
        "rpo_3",
    ]
