"""Shared fixtures: the SmolLM2 tokenizer and tiny random models, built once per session (seconds).

The environment is pinned offline before anything heavy is imported: no hub, no telemetry.
"""

from __future__ import annotations

import os

for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "VLLM_NO_USAGE_STATS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_k, _v)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

CACHE = os.environ.get("FLYWHEEL_CACHE", os.path.expanduser("~/.cache/flywheel"))


@pytest.fixture(scope="session")
def cache_dir() -> str:
    return CACHE


@pytest.fixture(scope="session")
def tokenizer_dir() -> str:
    from flywheel.models import smollm2_tokenizer

    return smollm2_tokenizer(CACHE)


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory, tokenizer_dir) -> str:
    from flywheel.models import TinyModelConfig, build_tiny_causal_lm

    out = tmp_path_factory.mktemp("models") / "tiny-policy"
    return build_tiny_causal_lm(str(out), tokenizer_dir, TinyModelConfig(), seed=0)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tokenizer_dir) -> str:
    from flywheel.models import TinyModelConfig, build_tiny_causal_lm

    out = tmp_path_factory.mktemp("models") / "tiny-llama"
    return build_tiny_causal_lm(str(out), tokenizer_dir, TinyModelConfig(arch="llama"), seed=0)


@pytest.fixture(scope="session")
def tiny_reward_dir(tmp_path_factory, tokenizer_dir) -> str:
    from flywheel.models import TinyModelConfig
    from flywheel.reward.model import build_reward_model

    out = tmp_path_factory.mktemp("models") / "tiny-reward"
    return build_reward_model(str(out), None, tokenizer_dir, tiny=TinyModelConfig(arch="llama"), seed=0)
