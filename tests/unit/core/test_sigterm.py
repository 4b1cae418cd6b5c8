"""SIGTERM stops a run the way Ctrl-C does, whoever installed a handler before (Ray, a Prefect flow run)."""

import os
import signal
import threading

import pytest

from flywheel.errors import Terminated, stop_on_sigterm


@pytest.fixture
def restore_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)
    Terminated.received = False


def test_sigterm_raises_terminated_even_over_another_handler(restore_sigterm):
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # e.g. Prefect's bridge, which its retries swallow
    stop_on_sigterm()
    with pytest.raises(Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
    assert Terminated.received


def test_off_the_main_thread_it_is_a_no_op(restore_sigterm):
    errors: list[BaseException] = []

    def body():
        try:
            stop_on_sigterm()
        except BaseException as err:  # signal.signal off the main thread raises ValueError
            errors.append(err)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert errors == []


def test_prefects_termination_signal_leaves_iterate_as_terminated(monkeypatch, restore_sigterm):
    from prefect.exceptions import TerminationSignal

    import flows.round as round_flows

    def stopped(**kwargs):
        raise TerminationSignal(signal.SIGTERM)

    monkeypatch.setattr(round_flows, "iterate_flow", stopped)
    with pytest.raises(Terminated):
        round_flows.iterate(1, 2, "configs/tiny.yaml", [])
    assert Terminated.received
