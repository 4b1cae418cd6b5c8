"""A full tiny round with every artifact on an S3 endpoint on 127.0.0.1 (moto's real HTTP server) via s3fs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUCKET = "flywheel-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": url,
    }
    import boto3

    boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret-value",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    yield url, env
    server.stop()


@pytest.fixture(scope="module")
def s3_round(s3_endpoint, tmp_path_factory):
    url, env = s3_endpoint
    cache = str(tmp_path_factory.mktemp("cache"))
    # share the downloaded SmolLM2 tokenizer, keep everything else of the run out of the default cache
    os.makedirs(os.path.join(cache, "downloads"), exist_ok=True)
    src = os.path.expanduser("~/.cache/flywheel/downloads")
    for name in os.listdir(src) if os.path.isdir(src) else []:
        os.symlink(os.path.join(src, name), os.path.join(cache, "downloads", name))
    cmd = [
        sys.executable,
        "-m",
        "flywheel.cli",
        "iterate",
        "--round",
        "1",
        "--no-prefect",
        "--config",
        os.path.join(ROOT, "configs", "tiny.yaml"),
        f"run.root=s3://{BUCKET}/runs/tiny",
        f"run.cache_dir={cache}",
        "generation.max_prompts=16",
        "eval.max_prompts=4",
    ]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500, env={**os.environ, **env})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return {"url": url, "env": env, "cache": cache, "out": res.stdout + res.stderr}


def _fs(url: str):
    import s3fs

    return s3fs.S3FileSystem(key="testing", secret="testing-secret-value", endpoint_url=url)


def test_every_stage_is_published_on_s3(s3_round):
    fs = _fs(s3_round["url"])
    base = f"{BUCKET}/runs/tiny/round-001"
    for stage in (
        "prompts",
        "dialogues",
        "responses",
        "judge",
        "datasets",
        "sft_code",
        "sft",
        "dpo",
        "rpo_1",
        "evaluate",
        "promote",
    ):
        man = json.loads(fs.cat_file(f"{base}/{stage}/_MANIFEST.json"))
        assert man["fingerprint"], stage
    dpo = json.loads(fs.cat_file(f"{base}/dpo/_MANIFEST.json"))
    model_uri = dpo["outputs"]["model"]["uri"]
    assert model_uri.startswith("s3://")
    files = {p.rsplit("/", 1)[-1] for p in fs.ls(model_uri)}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files


def test_manifests_live_only_on_s3(s3_round):
    # local disk holds caches (model copies, the MLflow sqlite file, trainer scratch), never a published stage
    local = [os.path.join(d, f) for d, _, files in os.walk(s3_round["cache"]) for f in files if f == "_MANIFEST.json"]
    assert local == []


def test_status_reads_the_s3_store(s3_round):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "flywheel.cli",
            "status",
            "--json",
            "--config",
            os.path.join(ROOT, "configs", "tiny.yaml"),
            f"run.root=s3://{BUCKET}/runs/tiny",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **s3_round["env"]},
    )
    assert res.returncode == 0, res.stderr
    rounds = json.loads(res.stdout)["rounds"]
    assert rounds[0]["round"] == 1 and all(v == "done" for v in rounds[0]["stages"].values())


def test_secret_never_logged(s3_round):
    assert "testing-secret-value" not in s3_round["out"]


def test_unreachable_s3_is_one_line_error(tmp_path):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
    }
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "flywheel.cli",
            "iterate",
            "--round",
            "1",
            "--no-prefect",
            "--config",
            os.path.join(ROOT, "configs", "tiny.yaml"),
            "run.root=s3://nowhere/run",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert res.returncode == 1
    err = [line for line in res.stderr.strip().splitlines() if line.startswith("flywheel: error")]
    assert len(err) == 1 and "s3://nowhere/run" in err[0]


def test_misspelt_bucket_is_refused_not_created(s3_endpoint, monkeypatch):
    from flywheel.errors import FlywheelError
    from flywheel.store import Store

    url, env = s3_endpoint
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    opts = {"endpoint_url": url}
    with pytest.raises(FlywheelError, match=r"bucket 'flywheel-tset' does not exist"):
        Store("s3://flywheel-tset/run", opts).check()
    import s3fs

    fs = s3fs.S3FileSystem(key="testing", secret="testing-secret-value", endpoint_url=url)
    assert not fs.exists("flywheel-tset")
    Store(f"s3://{BUCKET}/run-check", opts).check()  # the real bucket passes
