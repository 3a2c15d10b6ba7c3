"""The run lifecycle of `jaxmlp.runs.lifecycle`, in process: opening a run to train, the commit steps a crash can fall
between, the history checked once per command, and the readers' retry while a trainer replaces checkpoints."""

import os

import pytest

from jaxmlp.config import TrainConfig
from jaxmlp.data.datasets import load_dataset
from jaxmlp.errors import ConfigError
from jaxmlp.runs import history as history_module
from jaxmlp.runs.lifecycle import MARKER, RunDir, resume_command, resume_training, start_training
from jaxmlp.runs.loop import Reporting, Saving, fit
from tests.crash import abandon, kill_after

QUIET = Reporting(progress=False, verbose=False)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", normalization="standardize")


def config(**kw):
    return TrainConfig(**{"dataset": "digits", "epochs": 2, "batch_size": 64, "hidden": (8,), **kw}).validate()


def train(path, cfg, ds, **saving):
    training = start_training(str(path), cfg, overwrite=saving.pop("overwrite", False))
    try:
        return fit(cfg, ds, Saving(training.run, **saving), QUIET)
    finally:
        training.run.release()


@pytest.fixture(scope="module")
def done_run(digits, tmp_path_factory):
    """A finished 2-epoch run, checkpointed after each epoch."""
    path = tmp_path_factory.mktemp("done") / "run"
    train(path, config(), digits, interval=0)
    return path


class Killed(BaseException):
    pass


def die():
    raise Killed


def train_until_killed(point, digits, path, monkeypatch, cfg=None, overwrite=False):
    """Start a run at `path` and train it until the kill at `point`, leaving the run as a killed process would."""
    kill_after(point, kill=die, setattr=monkeypatch.setattr)
    training = start_training(str(path), cfg or config(), overwrite=overwrite)
    with pytest.raises(Killed):
        fit(training.config, digits, Saving(training.run), QUIET)
    abandon(training.run)


def test_a_kill_after_the_files_are_written_leaves_no_run(digits, tmp_path, monkeypatch):
    train_until_killed("files-written", digits, tmp_path / "run", monkeypatch)
    staging = tmp_path / ".run.jaxmlp-new"
    assert {"metrics.jsonl", "steps.npz", MARKER} <= set(os.listdir(staging))
    assert not (staging / "checkpoints").exists() or not os.listdir(staging / "checkpoints")
    RunDir.create(str(tmp_path / "other"), config()).release()  # a new run beside it cleans what the kill left
    assert sorted(os.listdir(tmp_path)) == []


def test_a_kill_after_the_first_commit_publishes_the_run_on_resume(digits, tmp_path, monkeypatch):
    train_until_killed("checkpoint-committed", digits, tmp_path / "run", monkeypatch)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [".run.jaxmlp-lock", ".run.jaxmlp-new"]
    resumed = resume_training(str(tmp_path / "run"))  # finishes the publication under the lock
    try:
        assert resumed.epochs_done == 1 and resumed.resumed
    finally:
        resumed.run.release()
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_a_kill_after_the_old_run_moved_aside_puts_the_new_one_in_place(digits, done_run, tmp_path, monkeypatch):
    import shutil

    path = tmp_path / "run"
    shutil.copytree(done_run, path)
    train_until_killed("old-run-moved-aside", digits, path, monkeypatch, config(hidden=(4,)), overwrite=True)
    monkeypatch.undo()
    assert {".run.jaxmlp-old", ".run.jaxmlp-new"} <= set(os.listdir(tmp_path)) and not path.exists()
    resumed = resume_training(str(path))
    try:
        assert resumed.config.hidden == (4,) and resumed.epochs_done == 1
    finally:
        resumed.run.release()
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_resume_training_checks_the_history_once(done_run, monkeypatch):
    calls = []
    digest = history_module.steps_digest
    monkeypatch.setattr(history_module, "steps_digest", lambda arrays: calls.append(1) or digest(arrays))
    training = resume_training(str(done_run), epochs=3)
    try:
        assert (training.epochs_done, training.config.epochs, training.complete) == (2, 3, False)
        training.run.epochs_done()
        training.run.check_history()
        assert len(calls) == 1  # one hash of the step log, however often the command asks
    finally:
        training.run.extend(2)  # as it was
        training.run.release()


def test_resume_training_refuses_fewer_epochs_and_warns_of_a_stretched_schedule(digits, tmp_path):
    path = tmp_path / "run"
    train(path, config(schedule="cosine", epochs=1), digits)
    with pytest.raises(ConfigError, match="already trained 1 epochs"):
        resume_training(str(path), epochs=0)
    training = resume_training(str(path), epochs=2)
    training.run.release()
    assert training.warnings == [
        "the cosine schedule is stretched from 1 to 2 epochs, so the learning rate from here on differs from the one "
        "the run was following"
    ]
    assert RunDir.open(str(path)).config().epochs == 2
    complete = resume_training(str(path), epochs=None)
    complete.run.release()
    assert not complete.complete and complete.epochs_done == 1
    assert complete.resume_command() == resume_command(str(path)) == f"jaxmlp train --resume {path}"


def failing(times, tries):
    """A read of the checkpoints that fails (as when a trainer removed one under it) the first `times` times."""

    def read(checkpointer):
        tries.append(checkpointer)
        if len(tries) <= times:
            raise ConfigError("removed while being read")
        return checkpointer.latest_step()

    return read


def test_a_reader_reads_again_once_while_a_trainer_holds_the_run(done_run):
    reader, tries = RunDir.open(str(done_run)), []
    step = reader.checkpointer().latest_step()
    with pytest.raises(ConfigError, match="removed while being read"):  # no trainer: the error is the reader's
        reader.read_committed(failing(1, tries))
    assert len(tries) == 1
    held = RunDir.open(str(done_run), lock=True, read_only=False)
    try:
        tries.clear()
        assert reader.read_committed(failing(1, tries)) == (step, str(os.getpid()))
        assert len(tries) == 2 and tries[0] is not tries[1]  # read again through a fresh look at the folder
        tries.clear()
        with pytest.raises(ConfigError, match=rf"training in progress \(pid {os.getpid()}\).*run the command again"):
            reader.read_committed(failing(2, tries))
        assert len(tries) == 2
    finally:
        held.release()
        reader.release()
