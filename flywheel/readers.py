"""Rows of JSONL and Parquet files on any fsspec URI, for the stages, the loaders and the store alike.

A bad file is one :class:`flywheel.errors.FlywheelError` naming it (and the line, for JSONL); nothing here
unpickles or evaluates what it reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec

from flywheel.errors import FlywheelError


def read_rows(uri: str) -> Iterator[Any]:
    """Rows of a JSONL or Parquet file (by its suffix), any fsspec URI; Parquet rows come back as dicts.

    Raises:
        FlywheelError: missing or unreadable file (named), as for :func:`read_jsonl`.
    """
    if not uri.endswith(".parquet"):
        yield from read_jsonl(uri)
        return
    import pyarrow.parquet as pq

    try:
        with fsspec.open(uri, "rb") as f:
            table = pq.read_table(f)
    except FileNotFoundError:
        raise FlywheelError(f"{uri}: no such file") from None
    except Exception as err:  # pyarrow's ArrowInvalid and friends: not a Parquet file
        raise FlywheelError(f"{uri}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    yield from table.to_pylist()


def read_jsonl(uri: str, fs=None, path: str | None = None) -> Iterator[dict]:
    """Yield JSON objects from a JSONL file (any fsspec URI); blank lines are skipped.

    Raises:
        FlywheelError: ``"{uri}:{line}: corrupt JSONL (...)"`` on the first bad line, or a missing file.
    """
    if fs is None:
        fs, path = fsspec.core.url_to_fs(uri)
    try:
        f = fs.open(path, "rt", encoding="utf-8")
    except FileNotFoundError:
        raise FlywheelError(f"file not found: {uri}") from None
    with f:
        yield from jsonl_rows(uri, f)


def jsonl_rows(uri: str, lines: Iterable[str]) -> Iterator[dict]:
    """The JSON objects of JSONL ``lines`` read from ``uri`` (named in errors); blank lines are skipped."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise FlywheelError(f"{uri}:{lineno}: corrupt JSONL ({err.msg})") from None
        if not isinstance(row, dict):
            raise FlywheelError(f"{uri}:{lineno}: corrupt JSONL (expected an object, got {type(row).__name__})")
        yield row
