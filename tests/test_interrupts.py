"""`jaxmlp.runs.interrupts`, in process: the command phase and the training phase's flag. The loading phase, and every
phase through a real `jaxmlp` process, are tested in test_reliability.py and test_redteam.py."""

import os
import signal
import sys

import pytest

from jaxmlp.runs import interrupts
from jaxmlp.runs.loop import Outcome
from jaxmlp.show.studies import common


@pytest.fixture
def handlers():
    """Put back this process's signal handlers and unraisable hook after a test that changes them."""
    saved = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    hook = sys.unraisablehook
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    sys.unraisablehook = hook


def test_training_turns_the_first_signal_into_a_flag_and_the_second_into_an_abort(handlers, capsys):
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.Training() as stop:
        assert not stop.stopping
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.stopping and stop.signal == signal.SIGTERM
        assert capsys.readouterr().err == "\nSIGTERM: stopping at the next chunk boundary (again to abort)...\n"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_command_phase_reports_an_interrupt_once_and_exits_130(handlers, capsys):
    def stopped():
        os.kill(os.getpid(), signal.SIGHUP)  # the terminal closed: raises where the command is
        raise AssertionError("not reached")

    assert interrupts.run_command(stopped) == interrupts.EXIT_STATUS == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert all(signal.getsignal(s) is signal.SIG_IGN for s in interrupts.SIGNALS)  # the command is over

    def reports_its_own():
        return interrupts.interrupted("interrupted before the first checkpoint; nothing was written")

    assert interrupts.run_command(reports_its_own) == 130
    assert capsys.readouterr().err == "interrupted before the first checkpoint; nothing was written\n"
    assert interrupts.run_command(lambda: 0) == 0 and capsys.readouterr().err == ""


def test_a_study_run_cut_short_by_a_signal_ends_the_study(monkeypatch):
    monkeypatch.setattr(common, "fit", lambda *a, **kw: Outcome("interrupted", [], None, {}, 0.0, 0.0))
    with pytest.raises(interrupts.Interrupted):
        common.fit_quietly(common.TrainConfig(), None)
    assert issubclass(interrupts.Interrupted, KeyboardInterrupt)  # so every command's handler ends it with 130
