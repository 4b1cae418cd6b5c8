"""Bad input: one line naming the culprit, non-zero exit, nothing published."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "configs", "tiny.yaml")


def _run(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flywheel.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("flywheel: error:")]
    assert len(errors) == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    return errors[0]


def _published(root: str) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f == "_MANIFEST.json"]


def test_missing_model_directory(tmp_path):
    root = tmp_path / "run"
    err = _one_error_line(
        _run(
            "iterate",
            "--round",
            "1",
            "--no-prefect",
            "--config",
            TINY,
            f"run.root={root}",
            f"models.initial={tmp_path}/no-such-model",
        )
    )
    assert "models.initial directory not found" in err and "no-such-model" in err
    assert _published(str(root)) == []


def test_corrupt_prompt_file_names_file_and_line(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "What is 2+2?"}\n{"prompt": "Name a colour."}\n{"prompt": "broken\n')
    root = tmp_path / "run"
    err = _one_error_line(
        _run(
            "stage",
            "prompts",
            "--round",
            "1",
            "--config",
            TINY,
            f"run.root={root}",
            f"generation.prompt_files=[{prompts}]",
            "sdg.pipelines=[]",
        )
    )
    assert f"{prompts}:3: corrupt JSONL" in err
    assert _published(str(root)) == []


def test_unknown_config_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: " + TINY + "\ntrain:\n  dpo:\n    betta: 0.1\n")
    err = _one_error_line(_run("iterate", "--round", "1", "--config", str(bad), f"run.root={tmp_path}/run"))
    assert "train.dpo.betta" in err and str(bad) in err
    assert not (tmp_path / "run").exists()


def test_a_bad_file_inside_a_stage_is_one_line_on_the_default_prefect_path(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "What is 2+2?"}\n{"prompt": "broken\n')
    err = _one_error_line(
        _run(
            "iterate",
            "--round",
            "1",
            "--config",
            TINY,
            f"run.root={tmp_path / 'run'}",
            f"generation.prompt_files=[{prompts}]",
            "sdg.pipelines=[]",
        )
    )
    assert f"{prompts}:2: corrupt JSONL" in err
