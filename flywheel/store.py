"""Artifact store on any fsspec path (local by default, ``s3://`` through s3fs).

Layout under the run root::

    {root}/round-001/{stage}/part-00000.jsonl ...   stage outputs (files or HF model directories)
    {root}/round-001/{stage}/_MANIFEST.json          written last: the stage is published only then
    {root}/models/...                               bootstrapped models (tiny, converted SmolLM2, reward)
    {root}/mlflow/...                               embedded MLflow store

Every file is written under a temporary name and renamed into place, so a killed process never leaves a
half-written file under a final name (local files are fsynced before the rename). A stage is *done* when its
manifest exists, its fingerprint (a hash of the stage's config, its input manifests and the code version)
matches, and every output it lists is intact (JSONL parts match their sha256, models hold config and weights):
that is how a rerun skips work, and why a truncated or deleted part is redone, never read as complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fsspec

from flywheel import __version__
from flywheel.errors import FlywheelError
from flywheel.readers import jsonl_rows, read_jsonl
from flywheel.retrying_fs import RetryingFS

MANIFEST = "_MANIFEST.json"
log = logging.getLogger("flywheel")


COMPLETE = "_COMPLETE.json"  # written last into a published directory: its files and their sizes


def fingerprint(*parts: Any) -> str:
    """Stable short hash of JSON-serialisable parts (configs, input digests, names)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def round_dir(round_idx: int) -> str:
    return f"round-{round_idx:03d}"


class Store:
    """Thin wrapper over one fsspec filesystem rooted at ``root``.

    Args:
        root: ``/local/path``, ``file:///...`` or ``s3://bucket/prefix``.
        storage_options: passed to fsspec (e.g. ``{"endpoint_url": ...}`` for s3). Credentials come from the
            environment / the standard AWS chain and are never logged.
    """

    def __init__(self, root: str, storage_options: dict | None = None):
        if "://" not in root:  # local: absolute, so URIs stay valid whatever the working directory
            root = os.path.abspath(os.path.expanduser(root))
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        try:
            self.fs, self._root_path = fsspec.core.url_to_fs(self.root, **self.storage_options)
        except (ImportError, ValueError) as err:
            raise FlywheelError(f"store root {root!r}: {err}") from None
        self.is_local = "file" in _protocols(self.fs)
        if not self.is_local:  # an object store that drops out for a moment is tried again, with backoff
            self.fs = RetryingFS(self.fs, self.root)

    # -- paths ---------------------------------------------------------------------------------
    def uri(self, *parts: str) -> str:
        return "/".join([self.root, *[p.strip("/") for p in parts if p]])

    def path(self, uri_or_rel: str) -> str:
        """Filesystem path (protocol stripped) for a URI or a path relative to the root."""
        if "://" in uri_or_rel or uri_or_rel.startswith("/"):
            return self.fs._strip_protocol(uri_or_rel)
        return f"{self._root_path}/{uri_or_rel.strip('/')}"

    def stage_uri(self, round_idx: int, stage: str) -> str:
        return self.uri(round_dir(round_idx), stage)

    def exists(self, uri: str) -> bool:
        try:
            return self.fs.exists(self.path(uri))
        except Exception as err:  # network errors from s3fs/botocore surface here first
            raise FlywheelError(f"store {self.root!r} unreachable: {type(err).__name__}: {err}") from None

    def check(self) -> None:
        """Fail early, in one line, when the store cannot be reached or written."""
        probe = self.uri(f".probe-{uuid.uuid4().hex[:8]}")
        if not self.is_local:  # never create a bucket: a misspelt name must fail, not make a new one
            bucket = self._root_path.split("/", 1)[0]
            try:
                found = self.fs.exists(bucket)
            except Exception as err:
                raise FlywheelError(f"store {self.root!r} unreachable: {type(err).__name__}: {err}") from None
            if not found:
                raise FlywheelError(f"store {self.root!r}: bucket {bucket!r} does not exist (create it first)")
        try:
            self.fs.makedirs(self.path(self.root), exist_ok=True)
            self.fs.pipe(self.path(probe), b"ok")
            self.fs.rm(self.path(probe))
        except Exception as err:
            raise FlywheelError(f"store {self.root!r} not writable: {type(err).__name__}: {err}") from None

    # -- atomic writes ---------------------------------------------------------------------------
    def write_bytes(self, uri: str, data: bytes) -> str:
        """Write ``data`` to ``uri`` atomically (temp name, then rename). Returns the sha256."""
        path = self.path(uri)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        if self.is_local:
            os.makedirs(
                os.path.dirname(path), exist_ok=True
            )  # on disk before the rename, so a power cut cannot leave a named, empty file
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        else:
            try:  # each call retried on a network error (RetryingFS); still failing, it is one line
                self.fs.pipe(tmp, data)
                self.fs.mv(tmp, path)
            except Exception as err:
                raise FlywheelError(f"store {self.root!r} unreachable: {type(err).__name__}: {err}") from None
        return hashlib.sha256(data).hexdigest()

    def write_json(self, uri: str, obj: Any) -> str:
        return self.write_bytes(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, uri: str) -> Any:
        return json.loads(self.fs.cat_file(self.path(uri)))

    def write_jsonl(self, uri: str, rows: Iterable[dict]) -> tuple[int, str]:
        """Write rows as JSON lines atomically. Returns (count, sha256)."""
        buf = []
        for row in rows:
            buf.append(json.dumps(row, ensure_ascii=False, default=str))
        data = ("\n".join(buf) + ("\n" if buf else "")).encode()
        return len(buf), self.write_bytes(uri, data)

    def write_parquet(self, uri: str, rows: Iterable[dict]) -> tuple[int, str]:
        """Write rows as one Parquet file atomically; its columns are the union of the rows' keys (a row
        without one reads back as None there). Returns (count, sha256)."""
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = list(rows)
        keys = list(dict.fromkeys(k for row in rows for k in row))
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pydict({k: [row.get(k) for row in rows] for k in keys}), buf)
        return len(rows), self.write_bytes(uri, buf.getvalue())

    def read_jsonl(self, uri: str) -> Iterator[dict]:
        """Yield rows; a corrupt line raises FlywheelError naming file and line number."""
        yield from read_jsonl(uri, fs=self.fs, path=self.path(uri))

    def read_part(self, part: dict) -> list[dict]:
        """The rows of a published part (JSONL or Parquet), after checking its bytes against the manifest's sha256."""
        data, problem = self._fetch_part(part)
        if problem is not None:
            raise FlywheelError(f"{problem}; rerun the stage to recompute it")
        if not part["uri"].endswith(".parquet"):
            return list(jsonl_rows(part["uri"], data.decode("utf-8", errors="replace").splitlines()))
        import io

        import pyarrow.parquet as pq

        return list(pq.read_table(io.BytesIO(data)).to_pylist())

    def part_problem(self, part: dict) -> str | None:
        """Why a published part cannot be trusted (missing, or bytes that are not the published ones), or None."""
        return self._fetch_part(part)[1]

    def _fetch_part(self, part: dict) -> tuple[bytes, str | None]:
        try:
            data = self.fs.cat_file(self.path(part["uri"]))
        except FileNotFoundError:
            return b"", f"{part['uri']}: published part is missing"
        except Exception as err:
            raise FlywheelError(f"store {self.root!r} unreachable: {type(err).__name__}: {err}") from None
        if part.get("sha256") and hashlib.sha256(data).hexdigest() != part["sha256"]:
            return data, f"{part['uri']}: published part was truncated or changed (sha256 mismatch)"
        return data, None

    def output_problem(self, man: dict) -> str | None:
        """The first published output of a manifest that is missing or altered, or None when all are intact.

        JSONL parts are checked against their sha256; a model directory must hold ``config.json`` and weights.
        """
        for out in man.get("outputs", {}).values():
            if not isinstance(out, dict):
                continue
            for part in out.get("parts", []):
                problem = self.part_problem(part)
                if problem is not None:
                    return problem
            if set(out) == {"uri"} and out["uri"].rstrip("/").endswith("/model"):
                problem = self.dir_problem(out["uri"])
                if problem is not None:
                    return f"{out['uri']}: published model is missing or incomplete ({problem})"
        return None

    def put_dir(self, local_dir: str, uri: str) -> None:
        """Publish a local directory (e.g. a HF checkpoint) at ``uri``, replacing what was there.

        The directory's ``_COMPLETE.json`` (every file with its size) is written last: a local copy is renamed
        into place whole; on an object store the marker first says "upload under way", the files are
        overwritten in place, and the final marker follows them, so an upload killed half-way reads as
        incomplete (:meth:`dir_problem`) and is redone.
        """
        dest = self.path(uri)
        files = {
            os.path.relpath(os.path.join(d, f), local_dir): os.path.getsize(os.path.join(d, f))
            for d, _, names in os.walk(local_dir)
            for f in names
            if f != COMPLETE
        }
        marker = json.dumps({"files": files}, sort_keys=True).encode()
        if self.is_local:
            tmp = f"{dest}.tmp-{uuid.uuid4().hex[:8]}"
            shutil.copytree(local_dir, tmp)
            with open(os.path.join(tmp, COMPLETE), "wb") as f:
                f.write(marker)
            if os.path.exists(dest):
                shutil.rmtree(dest)
            os.replace(tmp, dest)
            return
        try:
            self.fs.pipe(f"{dest}/{COMPLETE}", b'{"files": null}')  # "upload under way" until the end
            self.fs.put(local_dir.rstrip("/") + "/", dest + "/", recursive=True)
            for path in self.fs.find(dest):
                if os.path.relpath(path, dest) not in files:
                    self.fs.rm(path)  # left from the copy this one replaces
            self.fs.pipe(f"{dest}/{COMPLETE}", marker)
        except Exception as err:
            raise FlywheelError(f"store {self.root!r}: publishing {uri} failed: {type(err).__name__}: {err}") from None

    def dir_problem(self, uri: str) -> str | None:
        """Why the directory at ``uri`` cannot be used, or None when it is complete.

        A directory :meth:`put_dir` published must match its ``_COMPLETE.json``; one published otherwise (a
        model a user put there) must at least hold ``config.json`` and ``*.safetensors`` weights.
        """
        path = self.path(uri)
        if not self.fs.isdir(path):
            return f"{uri}: directory is missing"
        return self._listing_problem(uri, self.dir_sizes(uri))

    def dir_sizes(self, uri: str) -> dict[str, int]:
        """Every file under the directory at ``uri``: relative name -> size (one listing)."""
        path = self.path(uri)
        return {os.path.relpath(p, path): int(i.get("size") or 0) for p, i in self.fs.find(path, detail=True).items()}

    def _listing_problem(self, uri: str, sizes: dict[str, int]) -> str | None:
        path = self.path(uri)
        if COMPLETE in sizes:
            listed = json.loads(self.fs.cat_file(f"{path}/{COMPLETE}"))["files"]
            if listed is None:
                return f"{uri}: incomplete (its upload did not finish)"
            bad = sorted(name for name, size in listed.items() if sizes.get(name) != size)
            return f"{uri}: incomplete or altered ({', '.join(bad[:3])})" if bad else None
        if "config.json" not in sizes or not any(n.endswith(".safetensors") for n in sizes):
            return f"{uri}: incomplete (no config.json and weights)"
        return None

    def local_dir(self, uri: str, cache_root: str | None = None) -> str:
        """A local path holding the directory at ``uri`` (itself when local, else a cached download).

        A remote directory must be complete (:meth:`dir_problem`); its cached copy is keyed by the URI and
        the remote listing (names and sizes), so a directory published again is downloaded again.
        """
        if self.is_local:
            path = self.path(uri)
            if not os.path.isdir(path):
                raise FlywheelError(f"model directory not found: {uri}")
            return path
        if not self.fs.isdir(self.path(uri)):
            raise FlywheelError(f"store: {uri}: directory is missing")
        sizes = self.dir_sizes(uri)
        problem = self._listing_problem(uri, sizes)
        if problem is not None:
            raise FlywheelError(f"store: {problem}")
        key = fingerprint(uri, sorted(sizes.items()))  # the same listing: a re-published directory re-downloads
        cache_root = cache_root or os.path.join(tempfile.gettempdir(), "flywheel-cache")
        dest = os.path.join(cache_root, key)
        if not os.path.isdir(dest):
            tmp = f"{dest}.tmp-{uuid.uuid4().hex[:8]}"
            os.makedirs(tmp, exist_ok=True)
            self.fs.get(self.path(uri).rstrip("/") + "/", tmp + "/", recursive=True)
            os.replace(tmp, dest)  # a killed download leaves only a .tmp-* directory, never dest
        return dest

    def local_file(self, uri: str, cache_root: str | None = None) -> str:
        if self.is_local:
            return self.path(uri)
        cache_root = cache_root or os.path.join(tempfile.gettempdir(), "flywheel-cache")
        dest = os.path.join(cache_root, hashlib.sha256(uri.encode()).hexdigest()[:16] + Path(uri).suffix)
        if not os.path.exists(dest):
            os.makedirs(cache_root, exist_ok=True)
            tmp = f"{dest}.tmp-{uuid.uuid4().hex[:8]}"
            self.fs.get(self.path(uri), tmp)
            os.replace(tmp, dest)
        return dest

    # -- manifests ---------------------------------------------------------------------------------
    def manifest(self, round_idx: int, stage: str) -> dict | None:
        uri = self.uri(round_dir(round_idx), stage, MANIFEST)
        return self.read_json(uri) if self.exists(uri) else None

    def is_done(self, round_idx: int, stage: str, fp: str) -> bool:
        """The stage is published with fingerprint ``fp`` and every output is intact (else it is redone)."""
        man = self.manifest(round_idx, stage)
        if man is None or man.get("fingerprint") != fp:
            return False
        problem = self.output_problem(man)
        if problem is not None:
            log.warning("%s %s: %s; redoing the stage", round_dir(round_idx), stage, problem)
            return False
        return True

    def commit(
        self,
        round_idx: int,
        stage: str,
        fp: str,
        outputs: dict[str, dict],
        inputs: dict[str, str] | None = None,
        metrics: dict | None = None,
        started: float | None = None,
    ) -> dict:
        """Publish a stage: write its manifest last.

        Args:
            outputs: name -> {"uri": ..., "sha256": ..., "count": ...} (whatever describes the output).
            inputs: name -> fingerprint of the input stages' manifests (lineage).
            metrics: small numbers worth keeping (counts, losses, timings).
        """
        man = {
            "stage": stage,
            "round": round_idx,
            "fingerprint": fp,
            "outputs": outputs,
            "inputs": inputs or {},
            "metrics": metrics or {},
            "code_version": __version__,
            "finished_at": time.time(),
            "seconds": round(time.time() - started, 3) if started else None,
        }
        self.write_json(self.uri(round_dir(round_idx), stage, MANIFEST), man)
        self.clear_failure(round_idx, stage)
        return man

    def mark_failed(self, round_idx: int, stage: str, error: str) -> None:
        self.write_json(self.uri(round_dir(round_idx), stage, "_FAILED.json"), {"error": error, "at": time.time()})

    def clear_failure(self, round_idx: int, stage: str) -> None:
        uri = self.uri(round_dir(round_idx), stage, "_FAILED.json")
        if self.exists(uri):
            self.fs.rm(self.path(uri))

    def failure(self, round_idx: int, stage: str) -> dict | None:
        uri = self.uri(round_dir(round_idx), stage, "_FAILED.json")
        return self.read_json(uri) if self.exists(uri) else None

    def rounds(self) -> list[int]:
        try:
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self._root_path, detail=False)]
        except FileNotFoundError:
            return []
        return sorted(int(n.split("-")[1]) for n in names if n.startswith("round-") and n[6:].isdigit())


def _protocols(fs) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
