"""Engine and training metrics reach Ray's Prometheus endpoint under the names dashboards/ queries."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """
    import json, socket, sys, time, urllib.request
    import ray
    from flywheel.engines.ray_train import _StepGauges
    from flywheel.engines.vllm_engine import ChatEngine, EngineSpec

    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    ray.init(address="local", num_cpus=2, include_dashboard=False, _metrics_export_port=port)
    engine = ray.remote(num_cpus=1)(ChatEngine).remote(
        EngineSpec(model=sys.argv[1], max_model_len=256, kv_cache_gb=0.25, metrics=True))
    out = ray.get(engine.chat.remote([[{"role": "user", "content": "hi"}]] * 4, {"temperature": 0.7, "max_tokens": 8}))

    @ray.remote
    def train_step():
        _StepGauges().update("dpo", {"loss": 0.5, "tokens_per_s": 123.0, "lr": 1e-6, "step": 3})
        time.sleep(12)  # Ray exports custom metrics every few seconds

    ray.get(train_step.remote())
    names, lines = set(), []
    for _ in range(20):
        body = urllib.request.urlopen(f"http://{ray.util.get_node_ip_address()}:{port}/metrics").read().decode()
        lines = [x for x in body.splitlines() if x and not x.startswith("#")]
        names = {x.split("{")[0].split(" ")[0] for x in lines}
        if "ray_vllm_generation_tokens_total" in names and "ray_flywheel_train_loss" in names:
            break
        time.sleep(3)
    train = [x for x in lines if x.startswith("ray_flywheel_train_")]
    print("RESULT " + json.dumps({"tokens": out["tokens"], "names": sorted(names), "train": train}))
    """
)


def test_vllm_and_training_metrics_reach_ray_prometheus(tmp_path, tiny_policy_dir):
    script = tmp_path / "metrics.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    res = subprocess.run(
        [sys.executable, str(script), tiny_policy_dir], capture_output=True, text=True, timeout=600, env=env
    )
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, res.stdout[-3000:] + res.stderr[-3000:]
    got = json.loads(line[0][7:])
    assert got["tokens"] > 0
    names = set(got["names"])
    # the series the Grafana dashboard queries (dashboards/flywheel-ray-vllm.json)
    for name in (
        "ray_vllm_generation_tokens_total",
        "ray_vllm_prompt_tokens_total",
        "ray_vllm_num_requests_running",
        "ray_vllm_num_requests_waiting",
        "ray_vllm_kv_cache_usage_perc",
        "ray_vllm_time_to_first_token_seconds_bucket",
        "ray_flywheel_train_loss",
        "ray_flywheel_train_tokens_per_s",
    ):
        assert name in names, name
    loss = [x for x in got["train"] if x.startswith("ray_flywheel_train_loss{") and 'stage="dpo"' in x]
    assert loss and float(re.split(r"\s+", loss[0])[-1]) == 0.5
    dashboard = open(os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "flywheel-ray-vllm.json")).read()
    assert "ray_flywheel_train_loss" in dashboard and "kv_cache_usage_perc" in dashboard
