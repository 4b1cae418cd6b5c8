"""A round's datasets for the rest of the ecosystem (each published set already has its dataset card, written
by :mod:`flywheel.stages.datasets`): ``flywheel export`` writes a round's or a whole run's sets as one ``datasets.DatasetDict`` directory
(``save_to_disk``) that ``datasets.load_from_disk`` and TRL's trainers read (``messages``; ``prompt`` /
``chosen`` / ``rejected``)."""

from __future__ import annotations

import json
from typing import Any

from flywheel.errors import FlywheelError
from flywheel.stages.datasets import SETS


def export_round_sets(store: Any, rounds: list[int], out_dir: str) -> dict[str, int]:
    """Write the ``datasets`` stage sets of ``rounds`` as one ``DatasetDict`` at ``out_dir``; rows gain ``round``.

    Returns the row count per set. Raises ``FlywheelError`` when a round has no published datasets stage.
    """
    import datasets

    merged: dict[str, list[dict]] = {name: [] for name in SETS}
    for r in rounds:
        man = store.manifest(r, "datasets")
        if man is None:
            raise FlywheelError(f"round {r}: no published datasets stage in {store.root} (run the round first)")
        for name in SETS:
            for part in man["outputs"].get(name, {}).get("parts", []):
                for row in store.read_part(part):  # checked against its sha256
                    merged[name].append({**row, "round": r, "lineage": json.dumps(row.get("lineage", {}))})
    sets = {}
    for name, rows in merged.items():
        if rows:  # every row gets every column (Arrow takes the columns of the first row)
            keys = list(dict.fromkeys(k for row in rows for k in row))
            sets[name] = datasets.Dataset.from_list([{k: row.get(k) for k in keys} for row in rows])
    datasets.DatasetDict(sets).save_to_disk(out_dir)
    return {name: len(rows) for name, rows in merged.items()}
