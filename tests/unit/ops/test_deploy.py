import ast
import os

from flywheel.ops.deploy import REPO, job_env, specs
from flywheel.ops.submit import check_env


def _flow_params(entrypoint: str) -> list[str]:
    path, func = entrypoint.split(":")
    tree = ast.parse(open(os.path.join(REPO, path)).read())
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func]
    return [a.arg for a in fn.args.args]


def test_deployments_point_at_the_flows_with_their_parameters():
    round_, iterate = specs("configs/tiny.yaml", ["run.root=/r"])
    assert (round_.full_name, iterate.full_name) == ("flywheel-round/round", "flywheel-iterate/iterate")
    assert round_.parameters == {"round_idx": 1, "config": "configs/tiny.yaml", "overrides": ["run.root=/r"]}
    assert iterate.parameters == {"first": 1, "last": 1, "config": "configs/tiny.yaml", "overrides": ["run.root=/r"]}
    # every default parameter is an argument of the flow function the entrypoint names
    for spec in (round_, iterate):
        assert set(spec.parameters) <= set(_flow_params(spec.entrypoint)), spec.entrypoint
        assert spec.concurrency_limit == 1


def test_job_env_is_offline_switches_only():
    env = job_env()
    assert env["HF_HUB_OFFLINE"] == "1" and env["DO_NOT_TRACK"] == "true"
    assert not [k for k in env if k.startswith("AWS_")]
    check_env(env)
