"""HelpSteer2 as published (JSONL, ``.jsonl.gz``, Parquet, split directories) -> checked rows and their local copy."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.errors import FlywheelError
from flywheel.reward.sources import materialize, read_reward_rows

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "helpsteer2"
TRAIN_GZ = FIXTURE / "train.jsonl.gz"
VALIDATION = FIXTURE / "validation.parquet"
COLUMNS = ["prompt", "response", "helpfulness", "correctness", "coherence", "complexity", "verbosity"]
MULTI_TURN_END = "<extra_id_1>User\nAnd how long should each run be?"


def _jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_fixture_is_helpsteer2_shaped():
    rows = _jsonl_rows(TRAIN_GZ)
    assert len(rows) == 12 and len({r["prompt"] for r in rows}) == 4
    assert all(list(r) == COLUMNS for r in rows)
    assert sum(r["prompt"].endswith(MULTI_TURN_END) for r in rows) == 3
    table = pq.read_table(VALIDATION)
    assert table.column_names == COLUMNS and table.num_rows == 6
    assert all(pa.types.is_integer(table.schema.field(c).type) for c in COLUMNS[2:])


def test_every_format_reads_to_the_rows_of_the_jsonl(tmp_path):
    expected = _jsonl_rows(TRAIN_GZ)
    plain = _write_jsonl(tmp_path / "train.jsonl", expected)
    parquet = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(expected), parquet)
    # a remote URI goes through fsspec like s3:// would
    with fsspec.open("memory://hs2/train.jsonl.gz", "wb") as f:
        f.write(TRAIN_GZ.read_bytes())
    for spec in (plain, TRAIN_GZ, parquet, "memory://hs2/train.jsonl.gz"):
        assert read_reward_rows(str(spec)) == expected, spec
    held = read_reward_rows(str(VALIDATION))
    assert held == pq.read_table(VALIDATION).to_pylist() and type(held[0]["helpfulness"]) is int


def test_a_directory_gives_the_split_asked_for(tmp_path):
    train = read_reward_rows(str(FIXTURE))
    assert train == read_reward_rows(str(TRAIN_GZ))
    assert read_reward_rows(str(FIXTURE) + "/", split="validation") == read_reward_rows(str(VALIDATION))
    # shards of one split are read in name order
    rows = read_reward_rows(str(VALIDATION))
    for i, part in enumerate((rows[:4], rows[4:])):
        pq.write_table(pa.Table.from_pylist(part), tmp_path / f"validation-0000{i}-of-00002.parquet")
    assert read_reward_rows(str(tmp_path), split="validation") == rows
    with pytest.raises(FlywheelError, match=r"expected test\.jsonl, test\.jsonl\.gz or test\.parquet .* found none"):
        read_reward_rows(str(FIXTURE), split="test")
    _write_jsonl(tmp_path / "validation.jsonl", rows)
    with pytest.raises(FlywheelError, match="found validation-00000-of-00002.parquet, .*validation.jsonl"):
        read_reward_rows(str(tmp_path), split="validation")
    with pytest.raises(FlywheelError, match="reward data not found"):
        read_reward_rows(str(tmp_path / "nothing"))


def test_the_multi_turn_prompt_reads_as_alternating_turns():
    from flywheel.reward.data import row_messages

    row = next(r for r in read_reward_rows(str(FIXTURE)) if r["prompt"].endswith(MULTI_TURN_END))
    assert [m["role"] for m in row_messages(row)] == ["user", "assistant", "user", "assistant"]


def test_a_malformed_row_names_file_row_and_field(tmp_path):
    good = _jsonl_rows(TRAIN_GZ)
    no_response = [good[0], good[1], {k: v for k, v in good[2].items() if k != "response"}]
    path = _write_jsonl(tmp_path / "bad.jsonl", no_response)
    with pytest.raises(FlywheelError, match=r"bad\.jsonl: row 3: field 'response' is missing"):
        read_reward_rows(str(path))
    wordy = tmp_path / "wordy.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "helpfulness": str(r["helpfulness"])} for r in good[:2]]), wordy)
    with pytest.raises(FlywheelError, match=r"wordy\.parquet: row 1: field 'helpfulness' is not a number: '4'"):
        read_reward_rows(str(wordy))
    empty_prompt = _write_jsonl(tmp_path / "prompt.jsonl", [{**good[0], "prompt": " "}])
    with pytest.raises(FlywheelError, match=r"prompt\.jsonl: row 1: field 'prompt': 'prompt' must be a non-empty"):
        read_reward_rows(str(empty_prompt))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(good[0]) + "\n{not json\n")
    with pytest.raises(FlywheelError, match=r"broken\.jsonl: row 2: not JSONL/Parquet \(invalid JSON"):
        read_reward_rows(str(broken))


@pytest.mark.parametrize(
    "name, data",
    [
        ("blob.jsonl", bytes(range(256)) * 4),  # binary, not UTF-8
        ("cut.jsonl.gz", TRAIN_GZ.read_bytes()[:40]),  # gzip cut short
        ("cut.parquet", VALIDATION.read_bytes()[:300]),  # Parquet magic, then a truncated file
    ],
)
def test_a_file_that_is_not_jsonl_or_parquet_is_named(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(FlywheelError, match=re.escape(f"{name}: not JSONL/Parquet")):
        read_reward_rows(str(tmp_path / name))


def test_rows_are_normalized_and_other_shapes_pass(tmp_path):
    row = {"prompt": "Hi", "response": "Hello", "helpfulness": 3.0, "correctness": float("nan"), "kind": "chat"}
    path = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    (got,) = read_reward_rows(str(path))
    assert got == {"prompt": "Hi", "response": "Hello", "helpfulness": 3, "correctness": None, "kind": "chat"}
    assert type(got["helpfulness"]) is int
    preference = {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [], "rejected": [], "category": "chat"}
    scored = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
        "scores": {"helpfulness": 2.5},
    }
    _write_jsonl(tmp_path / "mixed.jsonl", [preference, scored])
    assert read_reward_rows(str(tmp_path / "mixed.jsonl")) == [preference, scored]


def test_materialize_is_keyed_by_content(tmp_path):
    cache = tmp_path / "cache"
    src = tmp_path / "hs2"
    shutil.copytree(FIXTURE, src)
    first = materialize(str(src), str(cache))
    assert os.path.dirname(first) == str(cache / "reward-data") and os.path.basename(first).startswith("train-")
    assert [json.loads(line) for line in open(first)] == read_reward_rows(str(TRAIN_GZ))
    stamp = os.stat(first).st_mtime_ns
    assert materialize(str(src / "train.jsonl.gz"), str(cache)) == first  # same bytes, same copy, not rewritten
    assert os.stat(first).st_mtime_ns == stamp
    val = materialize(str(src), str(cache), split="validation")
    assert val != first and len(open(val).readlines()) == 6
    # the source changes: a new copy, read from the new content
    rows = _jsonl_rows(TRAIN_GZ)[:5]
    (src / "train.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    second = materialize(str(src), str(cache))
    assert second != first and [json.loads(line) for line in open(second)] == rows
    assert sorted(os.listdir(cache / "reward-data")) == sorted(os.path.basename(p) for p in (first, second, val))


def test_materialize_writes_nothing_for_a_bad_source(tmp_path):
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Hi"}])
    with pytest.raises(FlywheelError, match="row 1: field 'response' is missing"):
        materialize(str(path), str(tmp_path / "cache"))
    assert not os.path.exists(tmp_path / "cache" / "reward-data") or not os.listdir(tmp_path / "cache" / "reward-data")


def test_the_shipped_set_copies_byte_for_byte(tmp_path):
    from flywheel.config import builtin_or_path

    for name in ("helpsteer_train.jsonl", "helpsteer_heldout.jsonl"):
        copy = materialize(f"builtin:{name}", str(tmp_path))
        assert Path(copy).read_bytes() == Path(builtin_or_path(f"builtin:{name}")).read_bytes()


def test_held_out_pairs_from_the_validation_parquet():
    from flywheel.reward.pairs import helpsteer_pairs

    pairs = helpsteer_pairs(read_reward_rows(str(FIXTURE), split="validation"), hard_gap=0.5)
    # two prompts x C(3, 2) responses, every gap non-zero; weights 0.3, 0.74, 0.46, 0.47, -0.33 give
    # spider: eight legs 6.14, "Eight." 5.70, six legs 1.52; happy: Joyful 6.17, Cheerful 5.81, Sad 0.92
    got = {(p["chosen"][0]["content"], p["rejected"][0]["content"]): (p["category"], p["gt_gap"]) for p in pairs}
    assert got == {
        ("A spider has eight legs.", "Spiders have six legs, like other insects."): ("chat", pytest.approx(4.62)),
        ("A spider has eight legs.", "Eight."): ("hard", pytest.approx(0.44)),
        ("Eight.", "Spiders have six legs, like other insects."): ("chat", pytest.approx(4.18)),
        ("Joyful.", "Sad."): ("chat", pytest.approx(5.25)),
        ("Joyful.", "Cheerful, content and glad all mean much the same as happy."): ("hard", pytest.approx(0.36)),
        ("Cheerful, content and glad all mean much the same as happy.", "Sad."): ("chat", pytest.approx(4.89)),
    }


def test_data_path_accepts_every_layout(tmp_path):
    from flywheel.reward.drivers import check_rows, data_path

    cache = str(tmp_path / "cache")
    assert check_rows(data_path(str(FIXTURE), cache)) == 12
    assert check_rows(data_path(str(FIXTURE), cache, "validation")) == 6
    assert check_rows(data_path(str(TRAIN_GZ), cache)) == 12
    assert check_rows(data_path(str(VALIDATION), cache)) == 6
    assert check_rows(data_path("builtin:helpsteer_train.jsonl", cache)) > 100


def test_evaluate_models_reads_a_directory_s_validation_split(tmp_path, monkeypatch):
    from flywheel.judges.attributes import DEFAULT_WEIGHTS
    from flywheel.reward import drivers
    from flywheel.reward.config import RewardConfig

    truth = {r["response"]: [float(r[c]) for c in COLUMNS[2:]] for r in read_reward_rows(str(VALIDATION))}

    def oracle(model, scorer, engine_cfg, ray_cfg, seed):
        return (lambda convs: [truth[c[-1]["content"]] for c in convs]), lambda: None

    monkeypatch.setattr(drivers, "score_fn", oracle)
    results = drivers.evaluate_models(
        {"oracle": "m"}, str(FIXTURE), RewardConfig(), DEFAULT_WEIGHTS, None, None, str(tmp_path)
    )
    assert results["oracle"]["accuracy/all"] == 1.0 and results["oracle"]["pairs/all"] == 6
    assert results["oracle"]["pairs/hard"] == 2


def test_a_reward_job_trains_on_the_materialized_fixture(tmp_path, tiny_reward_dir):
    from flywheel.reward.job import RewardJob, run_reward_job
    from flywheel.train.config import StageConfig
    from flywheel.train.job import LocalRuntime

    data = materialize(str(FIXTURE), str(tmp_path / "cache"))
    stage = StageConfig(lr=3e-3, batch_size=4, max_steps=3, max_len=96, lr_schedule="constant")
    job = RewardJob("reward", "reward", tiny_reward_dir, None, [data], str(tmp_path / "rm"), stage)
    metrics = run_reward_job(job, LocalRuntime())
    assert len(metrics["history"]) == 3 and metrics["skipped_rows"] == 0
    assert os.path.isfile(tmp_path / "rm" / "config.json")


def test_sources_need_no_engine_or_service_library():
    import subprocess
    import sys

    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'ray', 'vllm', 'deepspeed', 'prefect', 'mlflow'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from flywheel.reward.sources import read_reward_rows\n"
        f"print(len(read_reward_rows({str(FIXTURE)!r}, split='validation')), flush=True)\n"
        # skip interpreter teardown: pyarrow's thread pool can abort there ("terminate called ...") on a
        # loaded machine, after the work this test checks is done
        "import os; os._exit(0)\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "6"
