"""Shipped operating files parse and agree with the code: cluster profile, prefect.yaml, manifests, dashboard."""

import glob
import json
import os

import yaml

from flywheel.config import load_config
from flywheel.ops.deploy import REPO, specs


def test_cluster_profile_validates_and_places_engines_and_trainers_on_gpus():
    cfg = load_config(os.path.join(REPO, "infra", "configs", "cluster.yaml"))
    assert cfg.engine.gpus_per_actor == 1 and cfg.train.use_gpu and cfg.train.backend == "nccl"
    assert cfg.run.root.startswith("s3://") and cfg.ray.address == "auto"
    assert cfg.run.storage_options == {}  # no endpoint or key baked into a shipped profile


def test_every_infra_yaml_parses():
    files = glob.glob(os.path.join(REPO, "infra", "**", "*.yaml"), recursive=True)
    assert len(files) >= 5
    for path in files:
        docs = list(yaml.safe_load_all(open(path)))
        assert docs and all(isinstance(d, dict) for d in docs), path


def test_prefect_yaml_matches_flywheel_deploy():
    doc = yaml.safe_load(open(os.path.join(REPO, "prefect.yaml")))
    by_name = {d["name"]: d for d in doc["deployments"]}
    for spec in specs("configs/tiny.yaml", []):
        dep = by_name[spec.name]
        assert dep["entrypoint"] == spec.entrypoint
        assert set(dep["parameters"]) == set(spec.parameters)
        assert dep["concurrency_limit"] == 1 and dep["work_pool"]["name"] == "flywheel"
        assert os.path.exists(os.path.join(REPO, dep["parameters"]["config"]))


def test_kuberay_and_ray_up_bind_no_secrets():
    for path in glob.glob(os.path.join(REPO, "infra", "**", "*.yaml"), recursive=True):
        text = open(path).read()
        assert "AWS_SECRET_ACCESS_KEY:" not in text or "${AWS_SECRET_ACCESS_KEY" in text, path


def test_grafana_dashboard_is_well_formed():
    dash = json.load(open(os.path.join(REPO, "dashboards", "flywheel-ray-vllm.json")))
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    series = [p for p in dash["panels"] if p["type"] == "timeseries"]
    assert len(series) >= 10
    exprs = " ".join(t["expr"] for p in series for t in p["targets"])
    for metric in (
        "generation_tokens",
        "num_requests_waiting",
        "kv_cache_usage_perc",
        "flywheel_train_tokens_per_s",
        "ray_node_cpu_utilization",
    ):
        assert metric in exprs, metric
    assert all(p["datasource"]["uid"] == "${datasource}" for p in series)
