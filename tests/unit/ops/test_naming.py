from flywheel.errors import FlywheelError
from flywheel.ops.naming import ACCELERATOR_TAG, retry_transient, run_label, task_options


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


class _State:
    def __init__(self, err):
        self.err = err

    def result(self):
        raise self.err


def test_bad_input_is_not_retried_but_io_errors_are():
    assert task_options("judge")["retry_condition_fn"] is retry_transient
    assert retry_transient(None, None, _State(FlywheelError("x.jsonl:3: corrupt JSONL"))) is False
    assert retry_transient(None, None, _State(ConnectionResetError("s3"))) is True
    assert retry_transient(None, None, _State(OSError("timeout"))) is True


def test_a_stage_stopped_by_a_signal_is_not_retried():
    from prefect.exceptions import TerminationSignal

    from flywheel.errors import Terminated

    assert retry_transient(None, None, _State(KeyboardInterrupt())) is False
    assert retry_transient(None, None, _State(TerminationSignal(15))) is False
    assert retry_transient(None, None, _State(SystemExit(1))) is False
    try:
        Terminated.received = True  # the signal came; the stage then failed on whatever it interrupted
        assert retry_transient(None, None, _State(ConnectionResetError("s3"))) is False
    finally:
        Terminated.received = False
