"""An S3 endpoint that goes down and comes back: the store retries with backoff; one that stays down is one line."""

import logging
import socket
import threading
import time

import pytest

from flywheel.errors import FlywheelError
from flywheel.retrying_fs import RetryingFS, transient
from flywheel.store import Store

BUCKET = "flywheel-retry"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    port = _free_port()
    servers = [ThreadedMotoServer(ip_address="127.0.0.1", port=port)]
    servers[0].start()
    url = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)

    def restart_after(seconds: float) -> threading.Thread:
        def run():
            time.sleep(seconds)
            servers.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port))
            servers[-1].start()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    yield url, servers, restart_after
    for s in servers:
        try:
            s.stop()
        except Exception:
            pass


def _store(url: str) -> Store:
    # botocore's own retries off, so what is measured is the store's
    options = {"endpoint_url": url, "skip_instance_cache": True, "config_kwargs": {"retries": {"max_attempts": 1}}}
    return Store(f"s3://{BUCKET}/run", options)


def test_an_endpoint_down_mid_run_then_back_loses_nothing(endpoint):
    url, servers, restart_after = endpoint
    store = _store(url)
    store.check()
    store.write_bytes(store.uri("a.json"), b'{"before": 1}')
    servers[0].stop()  # the endpoint drops out (moto keeps its buckets in this process)
    back = restart_after(1.5)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("flywheel").addHandler(handler)
    try:
        sha = store.write_bytes(store.uri("b.json"), b'{"during": 2}')
    finally:
        logging.getLogger("flywheel").removeHandler(handler)
    back.join()
    assert store.read_json(store.uri("b.json")) == {"during": 2} and len(sha) == 64
    assert store.read_json(store.uri("a.json")) == {"before": 1}
    assert any("retrying in" in m for m in seen), seen


def test_an_endpoint_that_stays_down_is_one_line_after_the_retries(endpoint, monkeypatch):
    monkeypatch.setattr("flywheel.retrying_fs.FIRST_WAIT_S", 0.05)
    url, servers, _ = endpoint
    store = _store(url)
    store.check()
    servers[0].stop()
    t0 = time.monotonic()
    with pytest.raises(FlywheelError, match=r"unreachable"):
        store.exists(store.uri("a.json"))
    with pytest.raises(FlywheelError, match=r"unreachable: EndpointConnectionError"):
        store.write_bytes(store.uri("b.json"), b"{}")
    assert time.monotonic() - t0 < 60


def test_only_network_errors_are_retried():
    calls = []

    class Flaky:
        def cat_file(self, path):
            calls.append(path)
            if len(calls) < 3:
                raise ConnectionResetError("reset by peer")
            return b"ok"

        def rm(self, path):
            calls.append(path)
            raise FileNotFoundError(path)

    fs = RetryingFS(Flaky(), "s3://x", first_wait_s=0.01)
    assert fs.cat_file("k") == b"ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(FileNotFoundError):
        fs.rm("k")
    assert len(calls) == 1  # a missing key is an answer, not an outage
    wrapped = OSError("wrapped")
    wrapped.__cause__ = TimeoutError("read timed out")
    assert transient(wrapped) and not transient(PermissionError("denied"))
