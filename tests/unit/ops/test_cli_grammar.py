"""One CLI grammar: every subcommand takes the profile (--config/-c) and key=value overrides in the same places."""

from __future__ import annotations

import pytest

from flywheel.cli import parser

COMMANDS = [
    ["iterate", "--rounds", "1"],
    ["stage", "prompts", "--round", "1"],
    ["status"],
    ["models", "pull", "smollm2"],
    ["compare"],
    ["services", "up"],
    ["services", "down"],
    ["services", "status"],
    ["deploy"],
    ["reward", "train"],
    ["reward", "eval"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
@pytest.mark.parametrize("flag", ["--config", "-c"])
def test_every_subcommand_takes_the_profile_and_overrides(cmd, flag):
    args, extra = parser().parse_known_args([*cmd, flag, "configs/tiny.yaml", "run.seed=3"])
    assert args.config == "configs/tiny.yaml" and hasattr(args, "overrides") and extra == ["run.seed=3"]
