import pytest

from flywheel.errors import FlywheelError
from flywheel.ops.report import html_page, table, write_report
from flywheel.ops.rows import flatten, fmt, row, rows_from_store, stage_seconds
from flywheel.store import Store

STAGES = ["prompts", "judge", "datasets", "dpo", "evaluate", "promote"]


def _commit(store, r, stage, metrics, seconds=None, outputs=None):
    man = store.commit(r, stage, f"fp-{stage}", outputs or {}, metrics=metrics)
    man["seconds"] = seconds
    store.write_json(store.uri(f"round-{r:03d}", stage, "_MANIFEST.json"), man)


def _round(store, r, promoted, next_gen):
    _commit(store, r, "prompts", {"prompts": 10 * r, "kind/open_qa": 10}, seconds=5.0)
    _commit(store, r, "judge", {"reward_mean": 0.5, "reward_min": 0.1, "reward_max": 0.9}, seconds=3.0)
    _commit(store, r, "datasets", {"preference": 7, "sft_general": 4, "sft_code": 1, "pairs/kept": 7}, seconds=0.5)
    _commit(store, r, "dpo", {"wall_seconds": 12.0, "loss": 0.69})  # trainer stages carry no manifest seconds
    _commit(store, r, "evaluate", {"win_rate": 0.25 * r, "candidate_reward": 0.4, "generator_reward": 0.3}, seconds=2.0)
    _commit(
        store,
        r,
        "promote",
        {},
        seconds=0.1,
        outputs={"decision": {"promoted": promoted, "reason": "x"}, "generator": {"id": next_gen, "uri": "/m"}},
    )


def test_flatten_uses_the_mlflow_key_scheme():
    flat = flatten(
        {
            "datasets": {"metrics": {"pairs/kept": 7, "flag": True, "name": "x"}, "seconds": 0.5},
            "dpo": {"metrics": {"wall_seconds": 12}, "seconds": None},
        }
    )
    assert flat == {"datasets.pairs.kept": 7.0, "datasets.stage_seconds": 0.5, "dpo.wall_seconds": 12.0}


def test_stage_seconds_falls_back_to_the_stage_wall_time():
    assert stage_seconds({"a.stage_seconds": 1.0, "b.wall_seconds": 2.0, "c.other": 3.0}, ["a", "b", "c"]) == {
        "a": 1.0,
        "b": 2.0,
    }


def test_row_fills_missing_metrics_with_none_and_totals_seconds():
    r = row(3, {"evaluate.win_rate": 0.5, "prompts.stage_seconds": 2.0, "dpo.wall_seconds": 3.5}, ["prompts", "dpo"])
    assert r["round"] == 3 and r["win rate"] == 0.5 and r["pairs"] is None
    assert r["total seconds"] == 5.5


def test_rows_from_store_per_round(tmp_path):
    store = Store(str(tmp_path / "run"))
    _round(store, 1, True, "round-1:rpo_1:abc")
    _round(store, 2, False, "round-1:rpo_1:abc")
    rows = rows_from_store(store, STAGES)
    assert [r["round"] for r in rows] == [1, 2]
    one, two = rows
    assert one["promoted"] is True and two["promoted"] is False
    assert one["generator"] == "initial" and two["generator"] == "round-1:rpo_1:abc"
    assert (one["prompts"], two["prompts"], two["pairs"], two["sft general"]) == (10, 20, 7, 4)
    assert (one["win rate"], two["win rate"]) == (0.25, 0.5)
    assert two["stage_seconds"] == {
        "prompts": 5.0,
        "judge": 3.0,
        "datasets": 0.5,
        "dpo": 12.0,
        "evaluate": 2.0,
        "promote": 0.1,
    }
    assert two["total seconds"] == 22.6
    assert [r["round"] for r in rows_from_store(store, STAGES, rounds=[2])] == [2]


def test_round_one_kept_generator_is_named(tmp_path):
    store = Store(str(tmp_path / "run"))
    _round(store, 1, False, "initial:tiny")
    assert rows_from_store(store, STAGES)[0]["generator"] == "initial:tiny"


def test_table_and_report(tmp_path):
    from rich.console import Console

    store = Store(str(tmp_path / "run"))
    _round(store, 1, True, "g1")
    _round(store, 2, False, "g1")
    rows = rows_from_store(store, STAGES)
    console = Console(record=True, width=120)
    console.print(table(rows, STAGES, "t"))
    text = console.export_text()
    assert "round 1" in text and "round 2" in text and "win rate" in text and "22.6" in text
    page = html_page(rows, STAGES, "t & co", b"\x89PNG")
    assert "t &amp; co" in page and page.count("<tr>") == 3 + 3
    paths = write_report(store, store.uri("reports"), rows, STAGES, "t")
    png = open(paths["png"], "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["html"].endswith("reports/compare.html") and "data:image/png;base64," in open(paths["html"]).read()


def test_fmt():
    assert [fmt(None), fmt(True), fmt(48.0), fmt(0.123456), fmt(1234.0), fmt("x")] == [
        "-",
        "yes",
        "48",
        "0.1235",
        "1,234",
        "x",
    ]


def test_compare_on_an_empty_run_names_the_root(tmp_path):
    from flywheel.config import load_config
    from flywheel.ops.compare import compare

    cfg = load_config(None, [f"run.root={tmp_path}/empty"])
    with pytest.raises(FlywheelError, match="nothing to compare"):
        compare(cfg)
    with pytest.raises(FlywheelError, match="--source"):
        compare(cfg, source="csv")
