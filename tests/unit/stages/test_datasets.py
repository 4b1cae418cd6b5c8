"""The datasets stage over a judge manifest written by hand: SFT rows, preference pairs, the RPO sign rule,
verifier-guided repair and the counts it writes in its metrics."""

from __future__ import annotations

from collections import Counter

from flywheel.config import load_config
from flywheel.sdg.instructions import make_instruction
from flywheel.stages import datasets
from flywheel.stages.common import Context, read_output, write_parts
from flywheel.stages.datasets import merge_llm_pairs
from flywheel.store import Store

LOWER = {"instructions": [make_instruction("all_lowercase", {})]}
BULLETS = {"instructions": [make_instruction("bullets", {"n": 3})]}


def _scored(pid, text, reward, verified=None, meta=None, kind="general"):
    return {
        "prompt_id": pid,
        "messages": [{"role": "user", "content": f"question {pid}"}, {"role": "assistant", "content": text}],
        "reward": reward,
        "scores": {},
        "verified": verified,
        "meta": meta,
        "kind": kind,
        "generator": "gen",
        "judge": "rm",
    }


SCORED = [
    # p1: the verifier decides against the reward model (inverted: 1.0 < 2.0)
    _scored("p1", "right", 1.0, True, {"answer": "7"}, "math"),
    _scored("p1", "wrong", 2.0, False, {"answer": "7"}, "math"),
    # p2: both fail; the best one is repaired
    _scored("p2", "Paris is the Capital.", 3.0, False, LOWER),
    _scored("p2", "It is Paris.", 1.0, False, LOWER),
    # p3: both fail; bullets cannot be repaired
    _scored("p3", "No bullets.", 2.0, False, BULLETS),
    _scored("p3", "None.", 1.0, False, BULLETS),
    # p4: no verifier; the reward model decides
    _scored("p4", "long", 2.0),
    _scored("p4", "short", 0.5),
]


def _context(tmp_path, *overrides, llm_pairs=None, scored=SCORED):
    cfg = load_config(None, [f"run.root={tmp_path / 'run'}", *overrides])
    ctx = Context(cfg=cfg, store=Store(str(tmp_path / "run")), round=1)
    outputs = {"scored": write_parts(ctx, "judge", "fpj", scored)}
    if llm_pairs is not None:
        outputs["llm_pairs"] = write_parts(ctx, "judge", "fpj/llm_pairs", llm_pairs)
    ctx.store.commit(1, "judge", "fpj", outputs)
    return ctx


def _pairs(ctx, man):
    return {p["prompt_id"]: p for p in read_output(ctx, man, "preference")}


def test_datasets_stage_applies_the_sign_rule_and_repair(tmp_path):
    ctx = _context(tmp_path)
    man = datasets.run(ctx)
    pairs = _pairs(ctx, man)
    assert sorted(pairs) == ["p1", "p2", "p4"]
    p1, p2, p4 = pairs["p1"], pairs["p2"], pairs["p4"]
    assert (p1["judge"], p1["reward_chosen"], p1["reward_rejected"]) == ("verifier", 2.0, 1.0)
    assert (p1["reward_model_chosen"], p1["reward_model_rejected"]) == (1.0, 2.0)
    assert p2["judge"] == "verifier_repair"
    assert (p2["chosen"][0]["content"], p2["rejected"][0]["content"]) == (
        "paris is the capital.",
        "Paris is the Capital.",
    )
    assert (p2["reward_chosen"], p2["reward_rejected"]) == (3.5, 3.0)
    assert (p4["judge"], p4["reward_chosen"], p4["reward_rejected"]) == ("reward_model", 2.0, 0.5)
    assert "reward_model_chosen" not in p4
    assert all(p["reward_chosen"] > p["reward_rejected"] for p in pairs.values())
    assert all(p["lineage"]["stage"] == "datasets" for p in pairs.values())

    general = list(read_output(ctx, man, "sft_general"))
    assert [(r["prompt_id"], r["messages"][-1]["content"], r.get("repaired")) for r in general] == [
        ("p1", "right", None),
        ("p2", "paris is the capital.", True),
        ("p4", "long", None),
    ]
    m = man["metrics"]
    assert (m["preference"], m["sft_general"], m["sft_code"]) == (3, 3, 0)
    assert m["pairs/rpo_sign_adjusted"] == 1 and m["pairs/reward_inverted"] == 1
    assert m["pairs/repaired"] == 1 and m["pairs/repair_failed/unfixable/bullets"] == 1
    assert m["pairs/judge/verifier_repair"] == 1 and m["pairs/judge/verifier"] == 1
    assert m["pairs/skipped/all_verified_false"] == 1
    assert m["sft/repaired"] == 1 and m["sft/repair_failed/unfixable/bullets"] == 1


def test_datasets_stage_without_repair(tmp_path):
    ctx = _context(tmp_path, "judges.repair=false", "judges.min_judged_gap=2.0")
    man = datasets.run(ctx)
    pairs = _pairs(ctx, man)
    assert sorted(pairs) == ["p1", "p4"]
    # inverted by 1.0 < min_judged_gap 2.0: swapped, then widened
    assert (pairs["p1"]["reward_chosen"], pairs["p1"]["reward_rejected"]) == (3.0, 1.0)
    m = man["metrics"]
    assert m["pairs/repaired"] == 0 and m["sft/repaired"] == 0
    assert m["pairs/skipped/all_verified_false"] == 2
    assert not any(k.startswith(("pairs/repair_failed/", "sft/repair_failed/")) for k in m)


def test_datasets_stage_llm_pairs_follow_the_sign_rule_and_leave_settled_prompts(tmp_path):
    llm = [
        {"prompt_id": "p2", "judge": "llm_judge", "prompt": [], "chosen": [], "rejected": [], "lineage": {}},
        {
            "prompt_id": "p4",
            "judge": "llm_judge",
            "prompt": [{"role": "user", "content": "question p4"}],
            "chosen": [{"role": "assistant", "content": "short"}],
            "rejected": [{"role": "assistant", "content": "long"}],
            "reward_chosen": 0.5,
            "reward_rejected": 2.0,
            "lineage": {},
        },
    ]
    ctx = _context(tmp_path, llm_pairs=llm)
    man = datasets.run(ctx)
    pairs = _pairs(ctx, man)
    assert [(pid, p["judge"]) for pid, p in sorted(pairs.items())] == [
        ("p1", "verifier"),
        ("p2", "verifier_repair"),  # settled: the LLM pair for p2 is not taken
        ("p4", "llm_judge"),
    ]
    p4 = pairs["p4"]
    assert (p4["reward_chosen"], p4["reward_rejected"]) == (2.0, 0.5)
    assert (p4["reward_model_chosen"], p4["reward_model_rejected"]) == (0.5, 2.0)
    m = man["metrics"]
    assert m["pairs/rpo_sign_adjusted"] == 2  # p1 (verifier) and p4 (LLM judge)
    assert (m["pairs/judge/verifier"], m["pairs/judge/verifier_repair"], m["pairs/judge/llm_judge"]) == (1, 1, 1)


def test_merge_counts_verifier_repair_pairs_as_settled():
    pairs = [
        {"prompt_id": "p1", "judge": "verifier"},
        {"prompt_id": "p2", "judge": "verifier_repair"},
        {"prompt_id": "p3", "judge": "reward_model"},
    ]
    llm = [
        {"prompt_id": "p2", "judge": "llm_judge", "lineage": {}},
        {"prompt_id": "p3", "judge": "llm_judge", "lineage": {}},
    ]
    counts = Counter({"verifier": 1, "verifier_repair": 1, "reward_model": 1})
    merged = merge_llm_pairs(pairs, llm, counts)
    assert merged == [
        {"prompt_id": "p1", "judge": "verifier"},
        {"prompt_id": "p2", "judge": "verifier_repair"},
        {"prompt_id": "p3", "judge": "llm_judge"},
    ]
    assert counts == Counter({"verifier": 1, "verifier_repair": 1, "llm_judge": 1})


def test_if_variants_add_verified_rows_for_plain_prompts_only(tmp_path):
    base = datasets.run(_context(tmp_path / "a"))
    ctx = _context(tmp_path / "b", "judges.if_variants=8")
    man = datasets.run(ctx)
    pairs = list(read_output(ctx, man, "preference"))
    variants = [p for p in pairs if "#variant-" in p["prompt_id"]]
    assert variants and {p["prompt_id"].split("#")[0] for p in variants} == {"p4"}  # p1-p3 carry verifiers
    assert all(p["judge"] == "verifier_repair" and p["rejected"][0]["content"] == "long" for p in variants)
    general = [r for r in read_output(ctx, man, "sft_general") if r["kind"] == "if_variant"]
    assert len(general) == len(variants) == man["metrics"]["variants/variants"]
    assert man["metrics"]["preference"] == base["metrics"]["preference"] + len(variants)
    assert man["fingerprint"] != base["fingerprint"]


def test_variants_without_their_pairs_are_sft_rows_only(tmp_path):
    base = datasets.run(_context(tmp_path / "a"))
    ctx = _context(tmp_path / "b", "judges.if_variants=8", "judges.variant_pairs=false")
    man = datasets.run(ctx)
    pairs = list(read_output(ctx, man, "preference"))
    assert not [p for p in pairs if "#variant-" in p["prompt_id"]]
    assert man["metrics"]["preference"] == base["metrics"]["preference"]
    general = [r for r in read_output(ctx, man, "sft_general") if r["kind"] == "if_variant"]
    assert general and len(general) == man["metrics"]["variants/variants"]


def test_parquet_output_holds_the_same_rows_and_loads_in_datasets_and_training(tmp_path):
    import pytest
    from datasets import load_dataset

    from flywheel.errors import FlywheelError
    from flywheel.train.data import load_rows

    as_jsonl = datasets.run(_context(tmp_path / "a"))
    ctx = _context(tmp_path / "b", "run.dataset_format=parquet")
    man = datasets.run(ctx)
    assert man["fingerprint"] != as_jsonl["fingerprint"]
    jctx = _context(tmp_path / "c")
    for name in ("sft_general", "preference"):
        parts = [p["uri"] for p in man["outputs"][name]["parts"]]
        assert parts and all(u.endswith(".parquet") for u in parts)
        want = list(read_output(jctx, datasets.run(jctx), name))
        got = list(read_output(ctx, man, name))

        # Parquet has one schema per file: a key some rows lack reads back as None in those rows; the lineage
        # names the stage's fingerprint, which the format is part of
        def same(rows):
            return [{k: v for k, v in r.items() if v is not None and k != "lineage"} for r in rows]

        assert same(got) == same(want) and {r["lineage"]["config_hash"] for r in got} == {man["fingerprint"]}
        assert len(load_rows(parts)) == len(want)
        assert load_dataset("parquet", data_files=parts, split="train").num_rows == len(want)
    part = man["outputs"]["preference"]["parts"][0]
    with open(part["uri"], "ab") as f:
        f.write(b"junk")
    with pytest.raises(FlywheelError, match="sha256 mismatch"):
        list(read_output(ctx, man, "preference"))
    with pytest.raises(FlywheelError, match="run.dataset_format must be jsonl or parquet"):
        _context(tmp_path / "d", "run.dataset_format=csv")


def test_no_surviving_pair_stops_at_datasets_naming_why(tmp_path):
    import pytest

    from flywheel.errors import FlywheelError

    cfg = load_config(None, [f"run.root={tmp_path / 'run'}", "judges.min_gap=100"])
    ctx = Context(cfg=cfg, store=Store(str(tmp_path / "run")), round=1)
    scored = [_scored("p4", "long", 2.0), _scored("p4", "short", 0.5)]  # reward-model decided, gap below 100
    ctx.store.commit(1, "judge", "fpj", {"scored": write_parts(ctx, "judge", "fpj", scored)})
    with pytest.raises(FlywheelError, match=r"round 1 datasets: no preference pair survived selection from 2"):
        datasets.run(ctx)
    assert ctx.store.manifest(1, "datasets") is None


def test_derived_variants_add_rows_and_change_the_fingerprint(tmp_path):
    plain = datasets.run(_context(tmp_path / "a", "judges.if_variants=4", "judges.variant_pairs=false"))
    ctx = _context(tmp_path / "b", "judges.if_variants=4", "judges.variant_pairs=false", "judges.variant_derived=true")
    man = datasets.run(ctx)
    assert man["fingerprint"] != plain["fingerprint"]
    general = [r for r in read_output(ctx, man, "sft_general") if r["kind"] == "if_variant"]
    assert len(general) == man["metrics"]["variants/variants"] >= plain["metrics"]["variants/variants"]
    assert {r["prompt_id"].split("#")[0] for r in general} == {"p4"}


def test_focused_variants_weigh_the_kinds_the_generator_failed(tmp_path):
    plain = datasets.run(_context(tmp_path / "a", "judges.if_variants=8", "judges.variant_pairs=false"))
    ctx = _context(tmp_path / "b", "judges.if_variants=8", "judges.variant_pairs=false", "judges.variant_focus=true")
    man = datasets.run(ctx)
    assert man["fingerprint"] != plain["fingerprint"]
    m = man["metrics"]
    # the fixture's IF samples: all_lowercase failed 2 of 2, bullets 2 of 2; nothing else was asked
    assert m["variants/focus/all_lowercase"] == m["variants/focus/bullets"] == 0.75
    assert m["variants/focus/no_commas"] == 0.5
    assert not [k for k in plain["metrics"] if k.startswith("variants/focus/")]
    kinds = sum(v for k, v in m.items() if k.startswith("variants/kind/"))
    general = [r for r in read_output(ctx, man, "sft_general") if r["kind"] == "if_variant"]
    assert len(general) == m["variants/variants"] > 0 and kinds >= len(general)


def test_a_response_cut_at_the_token_limit_is_not_chosen_unless_complete_only_is_off(tmp_path):
    cut = {**_scored("p5", "a long answer that stops in the mid", 9.0), "finished": False}
    whole = {**_scored("p5", "A whole answer.", 1.0), "finished": True}
    scored = [*SCORED, cut, whole, _scored("p5", "A worse one.", 0.5)]
    ctx = _context(tmp_path / "on", scored=scored)
    man = datasets.run(ctx)
    assert man["metrics"]["responses_truncated"] == 1
    p5 = _pairs(ctx, man)["p5"]
    # the reward model ranks the complete answers only: the cut one is never chosen
    assert (p5["chosen"][0]["content"], p5["rejected"][0]["content"]) == ("A whole answer.", "A worse one.")
    sft = [r for r in read_output(ctx, man, "sft_general") if r["prompt_id"] == "p5"]
    assert [r["messages"][-1]["content"] for r in sft] == ["A whole answer."]
    # judges.complete_only=false: the cut answer (higher reward) is chosen again, as before the flag
    ctx = _context(tmp_path / "off", "judges.complete_only=false", scored=scored)
    man = datasets.run(ctx)
    assert _pairs(ctx, man)["p5"]["chosen"][0]["content"] == cut["messages"][1]["content"]
    # ... marked as cut, in the pair and the SFT row, so training learns no end of turn there
    assert _pairs(ctx, man)["p5"]["chosen"][0]["cut"] is True
    sft = [r for r in read_output(ctx, man, "sft_general") if r["prompt_id"] == "p5"]
    assert sft[0]["messages"][-1]["cut"] is True
