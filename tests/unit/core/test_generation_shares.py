"""The round summary's generation figures: each stage's tokens/s against the full-batch stage's."""

from flywheel.rounds import generation_shares


def test_each_generation_stage_is_reported_against_the_responses_stage():
    out = generation_shares(
        {
            "prompts": {"tokens_per_s": 445.6, "gen_tokens": 74701},
            "dialogues": {"tokens_per_s": 242.3},
            "responses": {"tokens_per_s": 604.7},
            "judge": {"tokens_per_s": 0},  # not a generation stage
        }
    )
    assert out == {
        "gen/prompts_tokens_per_s": 445.6,
        "gen/dialogues_tokens_per_s": 242.3,
        "gen/responses_tokens_per_s": 604.7,
        "gen/prompts_share": 0.737,
        "gen/dialogues_share": 0.401,
        "gen/responses_share": 1.0,
    }


def test_without_the_full_batch_stage_rates_are_kept_and_no_share_is_made_up():
    # a resumed round whose responses stage was reused; a stage that generated nothing
    out = generation_shares({"prompts": {"tokens_per_s": 300.0}, "dialogues": {"tokens_per_s": 0.0}})
    assert out == {"gen/prompts_tokens_per_s": 300.0}
    assert generation_shares({}) == {}
