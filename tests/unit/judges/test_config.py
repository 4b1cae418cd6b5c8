"""JudgeConfig: structured OmegaConf section and its validation."""

import sys

import pytest
from omegaconf import OmegaConf

from flywheel.errors import FlywheelError
from flywheel.judges.config import JudgeConfig, validate_judge_config


def test_defaults_and_structured_roundtrip():
    cfg = OmegaConf.structured(JudgeConfig)
    assert dict(cfg.weights) == {
        "helpfulness": 0.3,
        "correctness": 0.74,
        "coherence": 0.46,
        "complexity": 0.47,
        "verbosity": -0.33,
    }
    assert (
        cfg.policy,
        cfg.min_gap,
        cfg.sft_threshold,
        cfg.use_verifiers,
        cfg.llm_judge,
        cfg.judge_model,
        cfg.seed,
    ) == (
        "max_min",
        0.0,
        None,
        True,
        False,
        "",
        0,
    )
    assert (cfg.min_judged_gap, cfg.repair) == (0.5, True)
    validate_judge_config(cfg)
    merged = OmegaConf.merge(
        cfg, OmegaConf.from_dotlist(["weights.verbosity=-0.5", "sft_threshold=3.5", "policy=max_random"])
    )
    obj = OmegaConf.to_object(merged)
    assert isinstance(obj, JudgeConfig)
    assert obj.weights["verbosity"] == -0.5 and obj.weights["helpfulness"] == 0.3 and obj.sft_threshold == 3.5
    obj.validate()


def test_type_checked_by_omegaconf():
    cfg = OmegaConf.structured(JudgeConfig)
    with pytest.raises(Exception):
        cfg.min_gap = "large"


@pytest.mark.parametrize(
    "override, culprit",
    [
        ({"policy": "best"}, "policy"),
        ({"min_gap": -0.1}, "min_gap"),
        ({"weights": {"length": 1.0}}, "weights"),
        ({"judge_pairs_per_prompt": 0}, "judge_pairs_per_prompt"),
        ({"sft_threshold": float("inf")}, "sft_threshold"),
        ({"min_judged_gap": 0.0}, "min_judged_gap"),
        ({"min_judged_gap": -1.0}, "min_judged_gap"),
        ({"min_judged_gap": float("nan")}, "min_judged_gap"),
    ],
)
def test_validation_names_the_field(override, culprit):
    cfg = OmegaConf.merge(OmegaConf.structured(JudgeConfig), override)
    with pytest.raises(FlywheelError, match=culprit):
        validate_judge_config(cfg)


def test_new_keys_merge_from_overrides():
    cfg = OmegaConf.merge(
        OmegaConf.structured(JudgeConfig), OmegaConf.from_dotlist(["repair=false", "min_judged_gap=1.5"])
    )
    validate_judge_config(cfg)
    assert (cfg.repair, cfg.min_judged_gap) == (False, 1.5)
    with pytest.raises(Exception):
        cfg.repair = "sometimes"


def test_repair_must_be_a_bool():
    cfg = JudgeConfig(repair="yes")  # type: ignore[arg-type]  # a plain dataclass does not check types
    with pytest.raises(FlywheelError, match="repair"):
        cfg.validate()
    with pytest.raises(FlywheelError, match="complete_only"):
        JudgeConfig(complete_only="yes").validate()  # type: ignore[arg-type]


def test_judges_import_without_torch_or_engines():
    # a clean interpreter: other tests in this process may already have imported torch
    import subprocess

    code = (
        "import sys; import flywheel.judges.config, flywheel.judges.select, flywheel.judges.verifiers, "
        "flywheel.judges.metrics, flywheel.judges.pairwise, flywheel.judges.attributes, flywheel.judges.repair; "
        "print(sorted(m for m in ('torch', 'ray', 'vllm', 'deepspeed', 'prefect', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
