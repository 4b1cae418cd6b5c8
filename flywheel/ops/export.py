"""A round's datasets for the rest of the ecosystem: a dataset card beside every published set, and
``flywheel export``, which writes a round's or a whole run's sets as one ``datasets.DatasetDict`` directory
(``save_to_disk``) that ``datasets.load_from_disk`` and TRL's trainers read (``messages``; ``prompt`` /
``chosen`` / ``rejected``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flywheel import __version__
from flywheel.errors import FlywheelError

SETS = {
    "sft_code": "supervised fine-tuning rows for the code stage (chosen responses to code prompts)",
    "sft_general": "supervised fine-tuning rows (chosen responses, role-played dialogues, instruction variants)",
    "preference": "preference pairs for DPO / RPO (chosen and rejected answers to one prompt, with rewards)",
}


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list of turns" if value and isinstance(value[0], Mapping) and "role" in value[0] else "list"
    if isinstance(value, Mapping):
        return "object"
    return "null" if value is None else type(value).__name__


def dataset_card(name: str, rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any], files: Iterable[str]) -> str:
    """The ``README.md`` of one published set (pure): what it is, schema, counts, lineage, how to load it."""
    schema: dict[str, set[str]] = {}
    for row in rows:
        for key, value in row.items():
            schema.setdefault(key, set()).add(_type(value))
    kinds = Counter(str(r.get("kind", "-")) for r in rows)
    judges = Counter(str(r.get("judge")) for r in rows if "judge" in r)
    lines = [
        f"# {name}",
        "",
        SETS.get(name, "a flywheel dataset"),
        "",
        f"- rows: {len(rows)}",
        f"- round: {info.get('round')}, stage fingerprint (config hash): `{info.get('config_hash')}`",
        f"- generator: `{info.get('generator')}`; judge: `{info.get('judge')}`",
        f"- written by flywheel {__version__}",
        "",
        "## Schema",
        "",
        "| column | type |",
        "|---|---|",
        *[f"| `{k}` | {' or '.join(sorted(v))} |" for k, v in schema.items()],
        "",
        "## Counts",
        "",
        "| kind | rows |",
        "|---|---|",
        *[f"| {k} | {n} |" for k, n in sorted(kinds.items())],
    ]
    if judges:
        lines += ["", "| judge | pairs |", "|---|---|", *[f"| {k} | {n} |" for k, n in sorted(judges.items())]]
    names = [f.rsplit("/", 1)[-1] for f in files]
    lines += [
        "",
        "## Load",
        "",
        "```python",
        "import datasets",
        f'ds = datasets.load_dataset("json", data_files={json.dumps(names)}, split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)


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
