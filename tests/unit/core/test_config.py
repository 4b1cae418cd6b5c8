"""Every shipped YAML loads and validates; bad keys and values fail in one line naming key and file."""

import glob
import os

import pytest

from flywheel.config import load_config
from flywheel.errors import FlywheelError

CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "*.yaml")))


def test_configs_exist():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"tiny.yaml", "local.yaml", "cluster.yaml", "paper.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.run.name


def test_defaults_are_the_reward_card_weights():
    w = load_config().judges.weights
    assert w == {"helpfulness": 0.3, "correctness": 0.74, "coherence": 0.46, "complexity": 0.47, "verbosity": -0.33}


def test_overrides_apply_with_types():
    cfg = load_config(None, ["engine.num_actors=3", "eval.margin=0.25", "run.root=/tmp/x"])
    assert cfg.engine.num_actors == 3 and cfg.eval.margin == 0.25 and cfg.run.root == "/tmp/x"


def test_unknown_key_in_yaml_names_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine:\n  num_actorz: 2\n")
    with pytest.raises(FlywheelError) as err:
        load_config(str(bad))
    assert str(bad) in str(err.value) and "engine.num_actorz" in str(err.value)
    assert "\n" not in str(err.value)


def test_wrong_type_names_key():
    with pytest.raises(FlywheelError, match="engine.num_actors"):
        load_config(None, ["engine.num_actors=many"])


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("engine: [unclosed\n")
    with pytest.raises(FlywheelError, match="broken.yaml: invalid YAML"):
        load_config(str(bad))
    with pytest.raises(FlywheelError, match="config file not found"):
        load_config(str(tmp_path / "absent.yaml"))


def test_yaml_of_the_wrong_shape_is_one_line(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- run\n- engine\n")
    with pytest.raises(FlywheelError, match=r"list.yaml: a config must be a mapping of sections .*got a list"):
        load_config(str(listed))
    scalar = tmp_path / "engine.yaml"
    scalar.write_text("engine: 5\n")
    with pytest.raises(FlywheelError, match=r"engine.yaml: engine must be a mapping of its settings, got int 5"):
        load_config(str(scalar))
    with pytest.raises(FlywheelError, match=r"command line: engine must be a mapping"):
        load_config(None, ["engine=5"])


@pytest.mark.parametrize(
    ("override", "culprit"),
    [
        ("run.name=../x", "run.name"),
        ("run.name=a/b", "run.name"),
        ("engine.kv_cache_gb=-1", "engine.kv_cache_gb"),
        ("engine.kv_cache_gb=nan", "engine.kv_cache_gb"),
        ("engine.batch_size=0", "engine.batch_size"),
        ("engine.max_model_len=0", "engine.max_model_len"),
    ],
)
def test_impossible_values_name_the_key(override, culprit):
    with pytest.raises(FlywheelError, match=culprit):
        load_config(None, [override])


def test_base_chain(tmp_path):
    (tmp_path / "a.yaml").write_text("engine:\n  num_actors: 4\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\neval:\n  margin: 0.5\n")
    cfg = load_config(str(tmp_path / "b.yaml"))
    assert cfg.engine.num_actors == 4 and cfg.eval.margin == 0.5


def test_cross_field_validation():
    with pytest.raises(FlywheelError, match="samples_per_prompt"):
        load_config(None, ["generation.samples_per_prompt=1"])
    with pytest.raises(FlywheelError, match="retry_samples must be >= 0"):
        load_config(None, ["generation.retry_samples=-2"])


def test_redact_hides_passwords_in_uris_only():
    from flywheel.config import redact

    assert redact("https://alice:s3cr3t@mlflow.example.com:5000/x") == "https://alice:***@mlflow.example.com:5000/x"
    assert redact("postgresql://u:p%40ss@db/mlflow") == "postgresql://u:***@db/mlflow"
    assert redact("see http://a:b@h and s3://c:d@e") == "see http://a:***@h and s3://c:***@e"
    for kept in ("http://127.0.0.1:5000", "sqlite:////tmp/mlflow.db", "user@host:path", 3):
        assert redact(kept) == kept
