"""Reward data as HelpSteer2 publishes it: JSONL, gzipped JSONL or Parquet, a file or a split directory.

HelpSteer2 (Wang et al., 2024, arXiv:2406.08673) ships ``train.jsonl.gz`` and ``validation.jsonl.gz`` with the
columns ``prompt, response, helpfulness, correctness, coherence, complexity, verbosity`` (scores are integers
0-4); Parquet exports of it carry the same columns. A source is any of:

* a file, local or any fsspec URI (``s3://bucket/hs2/train.jsonl.gz``), or ``builtin:NAME`` (shipped in
  ``flywheel/data``); its format is read from its first bytes, not its name (Parquet's ``PAR1`` magic, gzip's
  ``1f 8b``, else UTF-8 JSONL);
* a directory holding HelpSteer2's files: ``{split}.jsonl``, ``{split}.jsonl.gz`` or ``{split}.parquet``, or
  shards ``{split}-*.parquet`` (and likewise for the other two), read in name order.

Rows are normalized the same whatever the format: every column is kept (the shipped set's ``kind`` and
``meta`` too), a NaN score becomes None (masked out of the loss), an integral float score becomes an int.
A row is checked as :mod:`flywheel.reward.data` will read it; a bad one raises one :class:`FlywheelError`
naming the file, the row (1-based; a JSONL row is its line) and the field. Preference rows
(``prompt``/``chosen``/``rejected``) pass through unchanged, for ``flywheel reward eval``.

:func:`materialize` writes the rows to a local JSONL file, the form the trainer reads
(:func:`flywheel.train.data.load_rows`), once per source content.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import posixpath
import re
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import fsspec

from flywheel.config import builtin_or_path, expand
from flywheel.errors import FlywheelError
from flywheel.judges.attributes import ATTRIBUTES
from flywheel.reward.data import parse_prompt, row_messages

HELPSTEER_COLUMNS = ("prompt", "response", *ATTRIBUTES)
SUFFIXES = (".jsonl.gz", ".jsonl", ".parquet")
# bump when normalization changes, so materialized copies are rewritten
_NORMALIZATION = 1
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"


def source_files(spec: str, split: str = "train", storage_options: dict | None = None) -> list[str]:
    """The file URIs a source names: the file itself, or a directory's ``split`` files.

    Raises:
        FlywheelError: nothing at ``spec``, or a directory without exactly one kind of ``split`` file.
    """
    uri = builtin_or_path(spec)
    try:
        fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        if fs.isfile(path):
            return [uri]
        if not fs.isdir(path):
            raise FlywheelError(f"reward data not found: {spec}")
        names = sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))
    except OSError as err:
        raise FlywheelError(f"reward data {spec}: {err}") from None
    by_suffix: dict[str, list[str]] = {}
    for name in names:
        for suffix in SUFFIXES:
            if name.endswith(suffix) and re.fullmatch(rf"{re.escape(split)}(-.+)?", name[: -len(suffix)]):
                by_suffix.setdefault(suffix, []).append(name)
                break
    if len(by_suffix) != 1:
        found = ", ".join(n for group in by_suffix.values() for n in group) or "none"
        raise FlywheelError(
            f"reward data {spec}: expected {split}.jsonl, {split}.jsonl.gz or {split}.parquet "
            f"(or {split}-* shards of one kind), found {found}"
        )
    base = uri.rstrip("/")
    return [f"{base}/{name}" for name in next(iter(by_suffix.values()))]


def _read_bytes(uri: str, storage_options: dict | None) -> bytes:
    try:
        with fsspec.open(uri, "rb", **(storage_options or {})) as f:
            return f.read()
    except FileNotFoundError:
        raise FlywheelError(f"reward data not found: {uri}") from None
    except OSError as err:
        raise FlywheelError(f"reward data {uri}: {err}") from None


def _raw_rows(data: bytes, name: str) -> Iterator[tuple[int, Any]]:
    """``(row number, record)`` from the bytes of one file, whatever its format."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise FlywheelError(f"{name}: not JSONL/Parquet (corrupt gzip: {err})") from None
    if data[:4] == _PARQUET_MAGIC:
        import pyarrow.parquet as pq

        try:
            records = pq.read_table(io.BytesIO(data)).to_pylist()
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError and others on a damaged file
            raise FlywheelError(f"{name}: not JSONL/Parquet (corrupt Parquet: {err})") from None
        yield from enumerate(records, 1)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FlywheelError(f"{name}: not JSONL/Parquet (binary data that is neither gzip nor Parquet)") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as err:
            raise FlywheelError(f"{name}: row {n}: not JSONL/Parquet (invalid JSON: {err.msg})") from None


def _score(value: Any, field: str) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FlywheelError(f"field {field!r} is not a number: {value!r:.40}")
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def normalize_row(row: Any) -> dict[str, Any]:
    """One reward row, checked and normalized (see the module docstring).

    Raises:
        FlywheelError: naming the field at fault (``prompt``, ``response``, ``messages`` or a score).
    """
    if not isinstance(row, Mapping):
        raise FlywheelError(f"not JSONL/Parquet (a row must be an object, got {type(row).__name__})")
    out = dict(row)
    if "chosen" in out:
        return out
    if "response" in out or "messages" not in out:
        if "response" not in out:
            raise FlywheelError("field 'response' is missing")
        if not isinstance(out["response"], str):
            raise FlywheelError(f"field 'response' must be a string, got {type(out['response']).__name__}")
        if "prompt" not in out:
            raise FlywheelError("field 'prompt' is missing")
        try:
            parse_prompt(out["prompt"])
        except FlywheelError as err:
            raise FlywheelError(f"field 'prompt': {str(err).removeprefix('reward row: ')}") from None
    else:
        try:
            row_messages(out)
        except FlywheelError as err:
            raise FlywheelError(f"field 'messages': {str(err).removeprefix('reward row: ')}") from None
    scores = out["scores"] if isinstance(out.get("scores"), Mapping) else None
    source = dict(scores) if scores is not None else out
    for name in ATTRIBUTES:
        if name in source:
            source[name] = _score(source[name], name)
    if scores is not None:
        out["scores"] = source
    return out


def _parse(data: bytes, name: str) -> list[dict[str, Any]]:
    rows = []
    for n, raw in _raw_rows(data, name):
        try:
            rows.append(normalize_row(raw))
        except FlywheelError as err:
            raise FlywheelError(f"{name}: row {n}: {err}") from None
    if not rows:
        raise FlywheelError(f"{name}: no rows")
    return rows


def read_reward_rows(spec: str, storage_options: dict | None = None, *, split: str = "train") -> list[dict]:
    """Normalized rows of a HelpSteer2-layout source.

    Args:
        spec: a JSONL, ``.jsonl.gz`` or Parquet file (local path, fsspec URI or ``builtin:NAME``), or a
            directory holding HelpSteer2's split files.
        storage_options: passed to fsspec (e.g. ``{"endpoint_url": ...}`` for S3).
        split: which split a directory's files are read for (``train``, ``validation``); ignored for a file.

    Returns:
        The rows in file order, each a dict with every column of the source.

    Raises:
        FlywheelError: a missing source, a file that is not JSONL/Parquet, or a malformed row (file, row, field).
    """
    rows: list[dict] = []
    for uri in source_files(spec, split, storage_options):
        rows.extend(_parse(_read_bytes(uri, storage_options), uri))
    return rows


def _label(split: str, uris: list[str]) -> str:
    """A readable file stem for a materialized copy: the source's name without its suffixes."""
    name = posixpath.basename(uris[0]) if len(uris) == 1 else split
    for suffix in (*SUFFIXES, ".gz", ".json"):
        name = name.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "data"


def materialize(spec: str, cache_dir: str, *, split: str = "train", storage_options: dict | None = None) -> str:
    """A local, normalized JSONL copy of a source, for readers of local JSONL (the trainer).

    The copy lives in ``{cache_dir}/reward-data/`` under a name keyed by the sha256 of the source's bytes, so
    an unchanged source is parsed once and a changed one is read again. It is written to a temporary file
    and renamed into place, so a reader never sees half of it. Rows are written as
    ``json.dumps(row, ensure_ascii=False)``, the way the shipped set is, so a copy of it has its very bytes.

    Args:
        spec: as for :func:`read_reward_rows`.
        cache_dir: cache root (``run.cache_dir``).
        split: which split of a directory.
        storage_options: passed to fsspec.

    Returns:
        The local path of the copy.

    Raises:
        FlywheelError: as :func:`read_reward_rows`.
    """
    uris = source_files(spec, split, storage_options)
    blobs = [_read_bytes(uri, storage_options) for uri in uris]
    digest = hashlib.sha256(f"flywheel-reward-rows-v{_NORMALIZATION}".encode())
    for blob in blobs:
        digest.update(hashlib.sha256(blob).digest())
    out_dir = os.path.join(expand(cache_dir), "reward-data")
    out = os.path.join(out_dir, f"{_label(split, uris)}-{digest.hexdigest()[:16]}.jsonl")
    if os.path.isfile(out):
        return out
    rows = [row for uri, blob in zip(uris, blobs) for row in _parse(blob, uri)]
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tmp-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out
