"""Prompt files in public datasets' published layouts (shipped fixtures), JSONL and Parquet, and their errors."""

from __future__ import annotations

import json
import os

import pytest

from flywheel.errors import FlywheelError
from flywheel.judges.verifiers import verify
from flywheel.sdg.formats import boxed_answer, detect, gsm8k_answer
from flywheel.stages.common import read_prompt_file

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "prompt_formats")


def _read(name, fmt=None):
    path = os.path.join(FIX, name)
    return read_prompt_file({"path": path, "format": fmt} if fmt else path)


def test_sharegpt_keeps_history_up_to_the_last_user_turn():
    rows = _read("sharegpt.jsonl")
    assert [r["id"] for r in rows] == ["sg-1", "sg-2"]
    assert rows[0]["messages"] == [{"role": "user", "content": "What makes bread rise?"}]
    assert [m["role"] for m in rows[1]["messages"]] == ["system", "user", "assistant", "user"]
    assert rows[1]["messages"][-1]["content"] == "And an even one?"


def test_lmsys_alpaca_by_detection():
    lm = _read("lmsys.jsonl")
    assert [r["id"] for r in lm] == ["c0ffee01", "c0ffee02"] and lm[1]["messages"][-1]["content"] == "In miles?"
    al = _read("alpaca.jsonl")
    assert al[0]["messages"][0]["content"] == "Give three tips for staying healthy."
    assert al[1]["messages"][0]["content"] == "Translate the sentence into French.\n\nThe cat sleeps."


def test_gsm8k_and_math_carry_ground_truth_the_verifiers_use():
    gsm = _read("gsm8k.jsonl")
    assert [r["meta"]["answer"] for r in gsm] == ["19", "3750"] and {r["kind"] for r in gsm} == {"math"}
    assert verify(gsm[1]["meta"], "Altogether 3,750 pens.\nThe answer is 3750.") is True
    assert verify(gsm[0]["meta"], "The answer is 20.") is False
    mth = _read("math.jsonl")
    assert [r["meta"]["answer"] for r in mth] == ["\\frac{5}{6}", "4"]
    assert verify(mth[1]["meta"], "So $x = \\boxed{4}$.") is True


def test_parquet_from_any_fsspec_uri(tmp_path):
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in open(os.path.join(FIX, "gsm8k.jsonl"))]
    local = tmp_path / "gsm8k.parquet"
    pq.write_table(pa.Table.from_pylist(rows), local)
    assert [r["meta"]["answer"] for r in read_prompt_file(str(local))] == ["19", "3750"]
    with fsspec.open("memory://prompts/gsm8k.parquet", "wb") as f:
        f.write(local.read_bytes())
    assert len(read_prompt_file({"path": "memory://prompts/gsm8k.parquet", "format": "gsm8k"})) == 2
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(FlywheelError, match=r"bad\.parquet: not a readable Parquet file"):
        read_prompt_file(str(tmp_path / "bad.parquet"))


def test_a_malformed_row_names_file_row_and_field(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"question": "Q?", "answer": "no final line"}) + "\n")
    with pytest.raises(FlywheelError, match=r"p\.jsonl:1: gsm8k row: field 'answer' has no '#### N' final line"):
        read_prompt_file(str(f))
    f.write_text(json.dumps({"conversations": [{"from": "robot", "value": "x"}]}) + "\n")
    with pytest.raises(
        FlywheelError, match=r"p\.jsonl:1: sharegpt row: field 'conversations'\[0\] has an unknown 'from'"
    ):
        read_prompt_file(str(f))
    f.write_text(json.dumps({"text": "?"}) + "\n")
    with pytest.raises(FlywheelError, match=r"p\.jsonl:1: prompt row needs 'messages' or 'prompt'"):
        read_prompt_file(str(f))
    with pytest.raises(FlywheelError, match="unknown format 'csv'"):
        read_prompt_file({"path": str(f), "format": "csv"})
    f.write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(FlywheelError, match=r"p\.jsonl:1: alpaca row: field 'instruction' must be a non-empty string"):
        read_prompt_file({"path": str(f), "format": "alpaca"})


def test_answer_extraction():
    assert gsm8k_answer("a\n#### 1,234") == "1234" and gsm8k_answer("no answer") is None
    assert boxed_answer("x \\boxed{\\frac{a}{b}} then \\boxed{7}") == "7"
    assert boxed_answer("\\boxed{\\sqrt{2}}") == "\\sqrt{2}" and boxed_answer("\\boxed{") is None
    assert detect({"instruction": "x"}) == "alpaca" and detect({"foo": 1}) is None
