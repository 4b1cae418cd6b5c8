"""Store: atomic writes, manifests, skip-by-fingerprint, corrupt JSONL named by file and line."""

import json
import os

import pytest

from flywheel.errors import FlywheelError
from flywheel.readers import read_jsonl
from flywheel.store import Store, fingerprint


def test_fingerprint_is_stable_and_order_insensitive_for_dicts():
    assert fingerprint({"a": 1, "b": 2}, "x") == fingerprint({"b": 2, "a": 1}, "x")
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert len(fingerprint("x")) == 16


def test_relative_root_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store("runs/r")
    assert store.root == str(tmp_path / "runs" / "r")


def test_write_jsonl_roundtrip_and_no_temp_left(tmp_path):
    store = Store(str(tmp_path))
    n, sha = store.write_jsonl(store.uri("round-001", "x", "part-00000.jsonl"), [{"a": 1}, {"a": "é"}])
    assert n == 2 and len(sha) == 64
    assert list(store.read_jsonl(store.uri("round-001", "x", "part-00000.jsonl"))) == [{"a": 1}, {"a": "é"}]
    assert os.listdir(tmp_path / "round-001" / "x") == ["part-00000.jsonl"]


def test_manifest_is_done_only_for_matching_fingerprint(tmp_path):
    store = Store(str(tmp_path))
    assert store.manifest(1, "prompts") is None
    store.commit(1, "prompts", "fp1", {"prompts": {"count": 3}}, metrics={"prompts": 3})
    assert store.is_done(1, "prompts", "fp1")
    assert not store.is_done(1, "prompts", "fp2")
    assert not store.is_done(2, "prompts", "fp1")
    assert store.rounds() == [1]


def test_failure_marker_cleared_by_commit(tmp_path):
    store = Store(str(tmp_path))
    store.mark_failed(1, "judge", "boom")
    assert store.failure(1, "judge")["error"] == "boom"
    store.commit(1, "judge", "fp", {})
    assert store.failure(1, "judge") is None


def test_corrupt_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(FlywheelError, match=r"p\.jsonl:3: corrupt JSONL"):
        list(read_jsonl(str(path)))


def test_non_object_line_is_corrupt(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(FlywheelError, match=r":1: corrupt JSONL \(expected an object"):
        list(read_jsonl(str(path)))


def test_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(FlywheelError, match="file not found"):
        list(read_jsonl(str(tmp_path / "nope.jsonl")))


def test_put_dir_replaces_atomically(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"x": 1}))
    store = Store(str(tmp_path / "store"))
    uri = store.uri("round-001", "sft", "model")
    store.put_dir(str(src), uri)
    (src / "config.json").write_text(json.dumps({"x": 2}))
    store.put_dir(str(src), uri)
    assert json.loads(open(store.local_dir(uri) + "/config.json").read()) == {"x": 2}
    assert sorted(os.listdir(tmp_path / "store" / "round-001" / "sft")) == ["model"]


def test_local_dir_missing_is_flywheel_error(tmp_path):
    with pytest.raises(FlywheelError, match="model directory not found"):
        Store(str(tmp_path)).local_dir(str(tmp_path / "nothing"))


def test_truncated_or_deleted_part_is_never_done_nor_read(tmp_path):
    store = Store(str(tmp_path))
    uri = store.uri("round-001", "responses", "fp1", "part-00000.jsonl")
    n, sha = store.write_jsonl(uri, [{"i": i} for i in range(50)])
    store.commit(1, "responses", "fp1", {"responses": {"parts": [{"uri": uri, "sha256": sha, "count": n}]}})
    part = store.manifest(1, "responses")["outputs"]["responses"]["parts"][0]
    assert store.is_done(1, "responses", "fp1") and len(store.read_part(part)) == 50

    path = tmp_path / "round-001" / "responses" / "fp1" / "part-00000.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 1])  # whole lines lost: still valid JSONL
    assert not store.is_done(1, "responses", "fp1")
    with pytest.raises(FlywheelError, match=r"part-00000.jsonl: published part was truncated or changed"):
        store.read_part(part)
    path.unlink()
    assert not store.is_done(1, "responses", "fp1")
    with pytest.raises(FlywheelError, match=r"part-00000.jsonl: published part is missing"):
        store.read_part(part)


def test_published_model_without_weights_is_not_done(tmp_path):
    store = Store(str(tmp_path))
    model = tmp_path / "round-001" / "sft" / "fp1" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"x")
    store.commit(1, "sft", "fp1", {"model": {"uri": store.uri("round-001", "sft", "fp1", "model")}})
    assert store.is_done(1, "sft", "fp1")
    (model / "model.safetensors").unlink()
    assert not store.is_done(1, "sft", "fp1")


def _model(tmp_path, name="m", weights=b"w" * 64):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(weights)
    return str(d)


def test_put_dir_on_an_object_store_marks_completion_last_and_replaces_in_place(tmp_path):
    """memory:// stands for S3 here: no rename, so completion is a marker written after every file."""
    import uuid

    store = Store(f"memory://b-{uuid.uuid4().hex[:8]}/run")
    uri = store.uri("models", "x")
    assert store.dir_problem(uri) == f"{uri}: directory is missing"
    store.put_dir(_model(tmp_path, "a"), uri)
    assert store.dir_problem(uri) is None
    # an upload killed half-way: the "under way" marker went first, the weights are half there
    store.fs.pipe(store.path(f"{uri}/_COMPLETE.json"), b'{"files": null}')
    store.fs.pipe(store.path(f"{uri}/model.safetensors"), b"w" * 10)
    assert store.dir_problem(uri) == f"{uri}: incomplete (its upload did not finish)"
    store.put_dir(_model(tmp_path, "b", b"w" * 64), uri)
    store.fs.pipe(store.path(f"{uri}/model.safetensors"), b"w" * 10)  # altered after publishing
    assert "incomplete or altered (model.safetensors)" in store.dir_problem(uri)
    with pytest.raises(FlywheelError, match="incomplete or altered"):
        store.local_dir(uri, str(tmp_path / "cache"))
    # published again with other weights: the stale file is gone and the cache downloads the new copy
    c = _model(tmp_path, "c", b"v" * 80)
    (tmp_path / "c" / "extra.txt").write_text("x")
    store.put_dir(c, uri)
    first = store.local_dir(uri, str(tmp_path / "cache"))
    os.remove(os.path.join(c, "extra.txt"))
    store.put_dir(c, uri)
    second = store.local_dir(uri, str(tmp_path / "cache"))
    assert first != second and not os.path.exists(os.path.join(second, "extra.txt"))
    assert open(os.path.join(second, "model.safetensors"), "rb").read() == b"v" * 80


def test_a_user_model_without_a_marker_needs_config_and_weights(tmp_path):
    store = Store(str(tmp_path / "run"))
    user = _model(tmp_path, "user")
    assert store.dir_problem(user) is None
    os.remove(os.path.join(user, "model.safetensors"))
    assert "no config.json and weights" in store.dir_problem(user)


def test_an_upload_that_breaks_off_leaves_the_directory_marked_incomplete(tmp_path, monkeypatch):
    import uuid

    store = Store(f"memory://b-{uuid.uuid4().hex[:8]}/run")
    uri = store.uri("models", "y")
    store.put_dir(_model(tmp_path, "a"), uri)

    def broken(*a, **k):
        raise ConnectionError("endpoint went away")

    monkeypatch.setattr(store.fs, "put", broken)
    with pytest.raises(FlywheelError, match=r"publishing .*models/y failed: ConnectionError"):
        store.put_dir(_model(tmp_path, "b", b"z" * 9), uri)
    assert store.dir_problem(uri) == f"{uri}: incomplete (its upload did not finish)"
    monkeypatch.undo()
    store.put_dir(_model(tmp_path, "c", b"z" * 9), uri)  # the endpoint is back: the rerun publishes it
    assert store.dir_problem(uri) is None
