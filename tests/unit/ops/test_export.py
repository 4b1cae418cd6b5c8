"""Dataset cards beside every published set, and `flywheel export` to a datasets.DatasetDict directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flywheel.errors import FlywheelError
from flywheel.ops.export import export_round_sets
from flywheel.stages import datasets as datasets_stage
from tests.unit.stages.test_datasets import _context


def test_every_set_gets_a_card_with_schema_counts_and_lineage(tmp_path):
    ctx = _context(tmp_path, "judges.if_variants=1")
    man = datasets_stage.run(ctx)
    for name in ("sft_code", "sft_general", "preference"):
        card_path = os.path.join(os.path.dirname(man["outputs"][name]["parts"][0]["uri"]), "README.md")
        card = open(card_path).read()
        assert card.startswith(f"# {name}\n") and f"- rows: {man['outputs'][name]['count']}" in card
        assert man["fingerprint"] in card and "generator: `gen`; judge: `rm`" in card
    pref = open(os.path.join(os.path.dirname(man["outputs"]["preference"]["parts"][0]["uri"]), "README.md")).read()
    assert "| `chosen` | list of turns |" in pref and "| verifier_repair |" in pref


def test_export_writes_a_datasetdict_that_loads_and_trl_columns(tmp_path):
    import datasets

    ctx = _context(tmp_path, "judges.if_variants=1")
    man = datasets_stage.run(ctx)
    out = str(tmp_path / "export")
    counts = export_round_sets(ctx.store, [1], out)
    dd = datasets.load_from_disk(out)
    assert counts["preference"] == len(dd["preference"]) == man["outputs"]["preference"]["count"]
    assert {"prompt", "chosen", "rejected", "round"} <= set(dd["preference"].column_names)
    assert {"messages", "round"} <= set(dd["sft_general"].column_names) and dd["sft_general"][0]["round"] == 1
    with pytest.raises(FlywheelError, match="round 2: no published datasets stage"):
        export_round_sets(ctx.store, [2], str(tmp_path / "x"))


def test_export_command_on_a_root_without_rounds_is_one_line(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "flywheel.cli", "export", "--out", str(tmp_path / "o"), f"run.root={tmp_path / 'r'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1 and "no round has published datasets yet" in res.stderr
    assert "Traceback" not in res.stderr
