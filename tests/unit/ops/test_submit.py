import os

import pytest

from flywheel.errors import FlywheelError
from flywheel.ops.submit import EXCLUDES, check_env, is_loopback, job_command, parse_env, runtime_env


def test_secret_looking_env_vars_are_refused():
    for key in (
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN",
        "HF_TOKEN",
        "DB_PASSWORD",
        "MY_API_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SECRET_THING",
    ):
        with pytest.raises(FlywheelError, match=key):
            check_env({key: "x"})
    check_env(
        {
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
            "AWS_REGION": "us-east-1",
            "KEYBOARD": "us",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )


def test_parse_env_pairs():
    assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(FlywheelError, match="not KEY=VALUE"):
        parse_env(["A"])


def test_loopback_addresses():
    assert is_loopback("http://127.0.0.1:8265") and is_loopback("localhost:8265")
    assert not is_loopback("http://ray-head.cluster:8265")


def test_job_command_joins_the_cluster_and_pins_a_relative_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = job_command(["iterate", "--round", "1", "x=1"], "http://127.0.0.1:8265", "runs/tiny")
    assert cmd == ["iterate", "--round", "1", "x=1", "ray.address=auto", f"run.root={tmp_path}/runs/tiny"]
    # an explicit address is kept; s3 and absolute roots are left alone
    assert job_command(["stage", "judge", "ray.address=ray://h:10001"], "http://h:8265", "s3://b/run") == [
        "stage",
        "judge",
        "ray.address=ray://h:10001",
    ]
    assert job_command(["status"], "http://h:8265", None) == ["status"]


def test_job_command_refuses_relative_root_on_a_remote_cluster_and_unknown_commands():
    with pytest.raises(FlywheelError, match="relative"):
        job_command(["iterate", "--round", "1"], "http://ray-head:8265", "runs/tiny")
    with pytest.raises(FlywheelError, match="command must be one of"):
        job_command(["models", "pull", "smollm2"], "http://127.0.0.1:8265", None)
    with pytest.raises(FlywheelError, match="nothing"):
        job_command([], "http://127.0.0.1:8265", None)


def test_runtime_env_uploads_the_checkout_without_venv_and_runs(tmp_path):
    rt = runtime_env(str(tmp_path), {"A": "1"}, {"pip": ["x"], "excludes": ["data/"], "env_vars": {"B": "2"}})
    assert rt["working_dir"] == str(tmp_path)
    assert rt["pip"] == ["x"]
    assert {".venv", "runs", ".git", "data/"} <= set(rt["excludes"]) and rt["excludes"][: len(EXCLUDES)] == EXCLUDES
    assert {".env", "**/.env"} <= set(rt["excludes"])  # infra/services/.env holds secrets: never uploaded
    assert rt["env_vars"]["A"] == "1" and rt["env_vars"]["B"] == "2" and rt["env_vars"]["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(FlywheelError):
        runtime_env(str(tmp_path), {}, {"env_vars": {"AWS_SECRET_ACCESS_KEY": "s"}})
    assert os.path.isabs(runtime_env(".", {})["working_dir"])


def test_split_and_normalize_put_overrides_where_argparse_reads_them():
    from flywheel.ops.submit import normalize, split_command

    cmd = ["stage", "prompts", "--round", "1", "--config", "a=b.yaml", "run.root=/r", "ray.address=auto"]
    assert split_command(cmd) == (
        ["stage", "prompts"],
        ["run.root=/r", "ray.address=auto"],
        ["--round", "1", "--config", "a=b.yaml"],
    )
    assert normalize(cmd) == [
        "stage",
        "prompts",
        "run.root=/r",
        "ray.address=auto",
        "--round",
        "1",
        "--config",
        "a=b.yaml",
    ]
    assert normalize(["iterate", "--rounds", "2", "--no-prefect", "x=1"]) == [
        "iterate",
        "x=1",
        "--rounds",
        "2",
        "--no-prefect",
    ]


def test_resolve_root_reads_config_and_overrides(tmp_path):
    from flywheel.ops.submit import resolve_root

    cfg = tmp_path / "p.yaml"
    cfg.write_text("run:\n  root: /from/yaml\n")
    assert resolve_root(["iterate", "--round", "1", "--config", str(cfg)]) == "/from/yaml"
    assert resolve_root(["stage", "judge", "--round", "1", "-c", str(cfg), "run.root=s3://b/r"]) == "s3://b/r"
    assert resolve_root(["status"]) is None
    with pytest.raises(FlywheelError, match="unknown config key"):
        resolve_root(["iterate", "--round", "1", "no.such=1"])


def test_overrides_carrying_credentials_are_refused_before_they_are_shipped():
    from flywheel.config import check_shipped_overrides
    from flywheel.ops.deploy import specs

    for item in (
        "run.storage_options.secret=abc",
        "run.storage_options.key=AKIA123",
        "run.storage_options.client_kwargs.aws_session_token=FQoGZXIvYXdzEJr",
        "tracking.uri=http://alice:hunter2@mlflow:5000",
    ):
        key = item.split("=")[0]
        with pytest.raises(FlywheelError, match=f"override {key}:") as err:
            job_command(["iterate", "--rounds", "1", item], "http://ray-head:8265", None)
        assert item.split("=", 1)[1] not in str(err.value)
        with pytest.raises(FlywheelError, match="Prefect parameters"):
            specs("configs/tiny.yaml", [item])
        with pytest.raises(FlywheelError):
            check_shipped_overrides([item], "x")
    ok = ["eval.max_tokens=64", "tracking.uri=http://mlflow:5000", "run.storage_options.endpoint_url=http://s3:9000"]
    check_shipped_overrides(ok, "x")
    assert specs("configs/tiny.yaml", ok)[0].parameters["overrides"] == ok
    assert job_command(["iterate", "--rounds", "1", *ok], "http://ray-head:8265", None)[:4] == [
        "iterate",
        "--rounds",
        "1",
        ok[0],
    ]


def test_token_auth_is_spoken_when_a_token_is_at_hand(tmp_path, monkeypatch):
    from flywheel.ops.submit import token_auth

    monkeypatch.setenv("HOME", str(tmp_path))
    assert not token_auth(env := {}) and "RAY_AUTH_MODE" not in env  # no token anywhere: Ray's default
    assert token_auth(env := {"RAY_AUTH_TOKEN_PATH": "/secrets/ray"}) and env["RAY_AUTH_MODE"] == "token"
    assert not token_auth({"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "t"})  # an explicit mode wins
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("t")  # what `ray get-auth-token --generate` writes
    assert token_auth(env := {}) and env == {"RAY_AUTH_MODE": "token"}
