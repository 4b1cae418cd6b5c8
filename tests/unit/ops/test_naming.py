from flywheel.ops.naming import ACCELERATOR_TAG, run_label, task_options


def test_run_label_names_run_round_and_stage():
    assert run_label("tiny", 2) == "tiny/round-2"
    assert run_label("tiny", 2, "judge") == "tiny/round-2/judge"


def test_accelerator_stages_share_the_limit_tag_and_retry_once():
    opts = task_options("responses")
    assert opts["tags"] == ["flywheel", "stage:responses", ACCELERATOR_TAG]
    assert opts["retries"] == 1 and opts["retry_delay_seconds"] == 10


def test_io_stages_retry_more_and_hold_no_accelerator():
    opts = task_options("datasets")
    assert ACCELERATOR_TAG not in opts["tags"]
    assert opts["retries"] == 3
