"""SDGConfig: OmegaConf structured loading, validation, defaults filling."""

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from flywheel.errors import FlywheelError
from flywheel.sdg.config import SDGConfig, validate, with_defaults
from flywheel.sdg.defaults import DEFAULT_DOC_TYPES, DEFAULT_TOPICS


def test_structured_merge_and_defaults():
    base = OmegaConf.structured(SDGConfig)
    overrides = OmegaConf.from_dotlist(["n_subtopics=3", "pipelines=[math,code]"])
    merged = OmegaConf.merge(base, overrides)
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, SDGConfig)
    assert cfg.n_subtopics == 3 and cfg.pipelines == ["math", "code"]
    validate(cfg)
    full = with_defaults(cfg)
    assert full.topics == list(DEFAULT_TOPICS) and full.doc_types == list(DEFAULT_DOC_TYPES)
    assert cfg.topics == []
    kept = with_defaults(SDGConfig(topics=["chess"]))
    assert kept.topics == ["chess"]


def test_type_errors_caught_by_omegaconf():
    with pytest.raises(ValidationError):
        OmegaConf.merge(OmegaConf.structured(SDGConfig), {"n_subtopics": "many"})


@pytest.mark.parametrize(
    "override",
    [
        {"pipelines": ["open_qa", "poetry"]},
        {"if_kinds": ["telepathy"]},
        {"personas": ["pirate"]},
        {"n_subtopics": 0},
        {"dialogues": -1},
        {"if_fraction": 1.5},
        {"heldout_fraction": -0.1},
        {"dedup_threshold": 0.0},
        {"min_prompt_chars": 100, "max_prompt_chars": 10},
    ],
)
def test_validate_rejects(override):
    with pytest.raises(FlywheelError):
        validate(SDGConfig(**override))


def test_default_config_is_valid():
    validate(SDGConfig())
