"""Reliability: fuzzed IDX input, divergence, interruption + exact resume, atomic and protected outputs."""

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmlp.cli import main
from jaxmlp.config import TrainConfig
from jaxmlp.data.datasets import load_dataset
from jaxmlp.data.idx import read_idx, write_idx
from jaxmlp.errors import DataError
from jaxmlp.files import write_atomic
from jaxmlp.runs.checkpoint import Checkpointer
from jaxmlp.runs.lifecycle import RunDir
from jaxmlp.runs.loop import Progress, Reporting, Saving, fit
from tests.helpers import ROOT, assert_same_run, catches, jaxmlp, restored_state

# --- fuzzing the IDX reader ----------------------------------------------------

VALID = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3]) + bytes(range(18))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda pos, val: VALID[:pos] + bytes([val]) + VALID[pos + 1 :],
            st.integers(0, len(VALID) - 1),
            st.integers(0, 255),
        ),
        st.builds(lambda cut: VALID[:cut], st.integers(0, len(VALID))),
        st.builds(
            lambda dims: bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in dims) + b"\x00" * 32,
            st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=3),
        ),
    )
)
def test_fuzzed_idx_gives_array_or_clear_error(tmp_path, content):
    path = tmp_path / "fuzz.idx"
    path.write_bytes(content)
    try:
        arr = read_idx(str(path), 3)
    except DataError as e:
        assert str(e).startswith(str(path))
    else:
        assert arr.ndim == 3 and arr.size == len(content) - 16


def test_header_claiming_a_billion_images_does_not_allocate(tmp_path):
    p = tmp_path / "huge.idx.gz"
    import gzip

    p.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + (10**9).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="limit"):
            read_idx(str(p), 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # rejected from its 16-byte header (how fast: python -m benchmarks.bounded_waits)


def test_bad_idx_dir_through_the_cli_is_one_line(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        write_idx(str(folder / name), np.zeros((4, 8, 8), np.uint8))
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09\x01")  # truncated
    write_idx(str(folder / "t10k-labels-idx1-ubyte"), np.zeros(4, np.uint8))
    r = jaxmlp("train", "--data-dir", folder, "--out", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "truncated" in r.stderr


# --- divergence ------------------------------------------------------------------


def test_divergence_exits_nonzero_and_keeps_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    # lr 100 diverges in the first steps of epoch 1: nothing good to keep.
    r = jaxmlp("train", "--dataset", "digits", "--optimizer", "sgd", "--lr", 100, "--out", out, "--no-progress")
    assert r.returncode == 3
    assert "epoch 1, step" in r.stderr and "lower --lr" in r.stderr and "Traceback" not in r.stderr
    # A run that is fine for 2 epochs and then blows up keeps its epoch-2 checkpoint.
    out2 = tmp_path / "run2"
    r = jaxmlp(
        "train",
        "--dataset",
        "digits",
        "--optimizer",
        "sgd",
        "--lr",
        0.05,
        "--epochs",
        2,
        "--out",
        out2,
        "--checkpoint-interval",
        0,
        "--no-figures",
    )
    assert r.returncode == 0
    cfg = json.loads((out2 / "config.json").read_text())
    cfg.update(lr=1e12, epochs=4)
    write_atomic(str(out2 / "config.json"), json.dumps(cfg))
    r = jaxmlp("train", "--resume", out2)
    assert r.returncode == 3 and "epoch 3" in r.stderr and "last good checkpoint" in r.stderr
    assert RunDir(str(out2)).checkpointer().latest_step() == 2 * (1442 // 64)


# --- interruption and exact resume ------------------------------------------------


def cli(capsys, *args):
    """`jaxmlp ARGS` in this process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


KILL_ARGS = ["--dataset", "digits", "--epochs", 3, "--batch-size", 16, "--hidden", "32", "--dropout", "0.2"]
KILL_ARGS += ["--chunks-per-epoch", 9, "--no-progress", "--no-figures"]  # 90 steps per epoch, 10 per chunk


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_epoch_then_resume_is_bitwise_identical(tmp_path, capsys, monkeypatch, sig):
    ref = tmp_path / "ref"
    assert cli(capsys, "train", *KILL_ARGS, "--out", ref)[0] == 0
    run = tmp_path / "my runs" / "ü $(touch PWNED)"  # the printed command must survive a shell
    update = Progress.update

    def signal_at_step_120(self, n, loss):  # a real signal, always at the same moment: step 30 of epoch 2
        update(self, n, loss)
        self.done = getattr(self, "done", 0) + n
        if self.done == 120:
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(Progress, "update", signal_at_step_120)
    code, out, _ = cli(capsys, "train", *KILL_ARGS, "--out", run)
    monkeypatch.undo()
    assert code == 130
    command = out.strip().splitlines()[-1].split("Resume with: ")[1]
    assert shlex.split(command) == ["jaxmlp", "train", "--resume", str(run)]
    meta = restored_state(run)[1]
    assert (meta["epoch"], meta["batch"]) == (1, 30)  # mid-epoch, not at a boundary
    assert cli(capsys, "train", "--resume", run)[0] == 0
    assert_same_run(run, ref)
    assert not (tmp_path / "PWNED").exists() and not os.path.exists("PWNED")


QUIET_FIT = Reporting(progress=False, verbose=False)


def test_kill_after_a_checkpoint_commit_loses_no_epoch(tmp_path, monkeypatch):
    """A kill right after a checkpoint is committed: the resume must neither drop nor repeat an epoch."""
    ds = load_dataset("digits", normalization="standardize")
    cfg = TrainConfig(dataset="digits", epochs=3, batch_size=32, hidden=(16,)).validate()
    ref = RunDir.create(str(tmp_path / "ref"), cfg)
    fit(cfg, ds, Saving(ref), QUIET_FIT)
    getattr(ref, "release", lambda: None)()

    class Killed(BaseException):
        pass

    save = Checkpointer.save

    def save_then_die(self, step, state, meta):
        save(self, step, state, meta)
        if meta["epoch"] == 2:
            raise Killed

    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    run = RunDir.create(str(tmp_path / "run"), cfg)
    with pytest.raises(Killed):
        fit(cfg, ds, Saving(run, interval=0), QUIET_FIT)
    getattr(run, "release", lambda: None)()
    monkeypatch.undo()
    run = RunDir.open(str(tmp_path / "run"))
    fit(cfg, ds, Saving(run, resume=True), QUIET_FIT)
    getattr(run, "release", lambda: None)()
    assert [r["epoch"] for r in run.history.read_metrics()] == [1, 2, 3]
    assert_same_run(tmp_path / "run", tmp_path / "ref")


# --- atomic, protected outputs ----------------------------------------------------


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    p = tmp_path / "metrics.jsonl"
    write_atomic(str(p), "old\n")

    def boom(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(str(p), "new and half-written")
    assert p.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["metrics.jsonl"]  # no temp file left behind


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    out = tmp_path / "run"
    trained = jaxmlp("train", "--dataset", "digits", "--epochs", 1, "--hidden", 16, "--no-figures", "--out", out)
    assert trained.returncode == 0
    ckpt = out / "checkpoints"
    step = sorted(os.listdir(ckpt))[0]
    for root, _, files in os.walk(ckpt / step / "state"):
        for f in files:
            path = os.path.join(root, f)
            with open(path, "r+b") as fh:
                fh.truncate(max(os.path.getsize(path) // 3, 0))
    r = jaxmlp("eval", "--run", out)
    assert r.returncode == 2 and "corrupt" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    import shutil

    shutil.rmtree(ckpt)
    r = jaxmlp("train", "--resume", out)
    assert r.returncode == 2 and "no checkpoint" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = jaxmlp("eval", "--run", tmp_path / "nothing")
    assert r.returncode == 2 and "not a run directory" in r.stderr


# --- validate, then touch ------------------------------------------------------------

QUIET = ["--dataset", "digits", "--no-progress", "--no-figures"]
TINY = [*QUIET, "--epochs", 1, "--hidden", 16]


def tree(folder):
    """Every path under `folder` with its bytes (files) or None (folders)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder)] = None
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, folder)] = open(path, "rb").read()
    return out


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "proj" / "src").mkdir(parents=True)
    (tmp_path / "proj" / "src" / "main.py").write_text("precious = True\n")
    code, _, err = cli(capsys, "train", *TINY, "--out", tmp_path / "proj", "--overwrite")
    assert code == 2 and err.startswith("error:") and "not a jaxmlp run" in err
    assert (tmp_path / "proj" / "src" / "main.py").read_text() == "precious = True\n"


def test_overwrite_keeps_the_old_run_until_the_new_one_is_committed(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert cli(capsys, "train", *TINY, "--out", out)[0] == 0
    before = tree(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(capsys, "train", "--data-dir", empty, "--epochs", 1, "--out", out, "--overwrite")
    assert code == 2 and err.count("\n") == 1 and str(empty) in err
    assert tree(out) == before  # a new run that cannot start leaves the old one untouched

    update = Progress.update

    def stop_at_first_chunk(self, n, loss):  # Ctrl-C in the first chunk of the new run
        update(self, n, loss)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Progress, "update", stop_at_first_chunk)
    code, _, _ = cli(capsys, "train", *QUIET, "--hidden", 8, "--chunks-per-epoch", 4, "--out", out, "--overwrite")
    assert code == 130
    assert json.loads((out / "config.json").read_text())["hidden"] == [8]  # replaced at its first checkpoint
    assert sorted(os.listdir(tmp_path)) == ["empty", "run"]  # nothing beside it: no staging, old copy or lock


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--devices", 3], "--devices 3"),
        (["--batch-size", 5000], "--batch-size"),
        (["--val-fraction", 0.9999], "--val-fraction"),
        (["--data-dir", "no/such/dir"], "no such directory"),
        (["--seed", 99999999999999999999], "--seed"),
        (["--warmup-epochs", "nan"], "--warmup-epochs"),
        (["--hidden", 3000000000], "--hidden"),
        (["--label-smoothing", 5], "--label-smoothing"),
        (["--devices", 0], "--devices 0"),
    ],
)
def test_late_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys, args, needle):
    code, out, err = cli(capsys, "train", *TINY, *args, "--out", tmp_path / "runs" / "x")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:") and needle in err, err
    assert os.listdir(tmp_path) == []  # not even runs/


def test_rerun_after_a_bad_start_just_works(tmp_path, capsys):
    out = tmp_path / "x"
    assert cli(capsys, "train", *TINY, "--batch-size", 5000, "--out", out)[0] == 2
    assert cli(capsys, "train", *TINY, "--out", out)[0] == 0


def test_nonsense_values_warn(tmp_path, capsys):
    code, _, err = cli(
        capsys, "train", *TINY, "--lr", 1e9, "--dropout", 0.999999, "--batch-size", 5000, "--out", tmp_path
    )
    assert code == 2  # the batch stops it before training; the warnings come first
    assert "warning: --lr 1e+09" in err and "warning: --dropout 0.999999" in err


# --- damaged run folders -----------------------------------------------------------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A finished 2-epoch run; tests copy it before damaging it."""
    out = tmp_path_factory.mktemp("good") / "run"
    assert main(["train", *map(str, TINY), "--epochs", "2", "--out", str(out)]) == 0
    return out


def damaged(good_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(good_run, copy)
    return copy


@pytest.mark.parametrize(
    "content, needle",
    [("null", "JSON object"), ("{}", "missing"), ('{"epochs": "5"}', "epochs"), ("{not json", "not valid JSON")],
)
def test_damaged_config_is_one_line(good_run, tmp_path, capsys, content, needle):
    run = damaged(good_run, tmp_path)
    if content.startswith('{"epochs"'):
        content = json.dumps({**json.loads((run / "config.json").read_text()), "epochs": "5"})
    (run / "config.json").write_text(content)
    for command in (["train", "--resume", run], ["eval", "--run", run]):
        code, _, err = cli(capsys, *command)
        assert code == 2 and err.count("\n") == 1 and "config.json" in err and needle in err, err


@pytest.mark.parametrize("name", ["metrics.jsonl", "steps.npz"])
@pytest.mark.parametrize("damage", ["truncate", "binary", "delete"])
def test_damaged_history_is_named_on_resume_and_plot(good_run, tmp_path, capsys, name, damage):
    run = damaged(good_run, tmp_path)
    path = run / name
    if damage == "delete":
        path.unlink()
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncate" else bytes(range(256)) * 4)
    config = json.loads((run / "config.json").read_text())
    write_atomic(str(run / "config.json"), json.dumps({**config, "epochs": 3}))
    code, _, err = cli(capsys, "train", "--resume", run)
    assert code == 2 and err.count("\n") == 1 and name in err, err
    if damage != "delete":
        code, _, err = cli(capsys, "plot", run)
        assert code == 2 and err.count("\n") == 1 and name in err, err


@pytest.mark.parametrize("manifest", [True, False])
def test_flipped_checkpoint_bytes_are_detected(good_run, tmp_path, capsys, manifest):
    """With the manifest of file checksums, or (killed before it was written) by the state's own checksum."""
    run = damaged(good_run, tmp_path)
    step = max(os.listdir(run / "checkpoints"), key=int)
    if not manifest:
        (run / "checkpoints" / step / "jaxmlp-files.json").unlink()
    data_files = [
        os.path.join(root, f)
        for root, _, files in os.walk(run / "checkpoints" / step / "state")
        for f in files
        if os.path.basename(root) == "d" and "ocdbt.process_" in root  # the arrays' bytes, not orbax's metadata
    ]
    for path in data_files:
        data = bytearray(open(path, "rb").read())
        for i in range(len(data) // 2, min(len(data), len(data) // 2 + 8)):
            data[i] ^= 0xFF
        open(path, "wb").write(bytes(data))
    code, out, err = cli(capsys, "eval", "--run", run)
    assert code == 2 and err.count("\n") == 1 and ("checksum" in err or "corrupt" in err), out + err


def test_eval_on_data_of_another_size_is_not_called_corrupt(good_run, tmp_path, capsys):
    folder = tmp_path / "idx10"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 20)):
        write_idx(str(folder / f"{split}-images-idx3-ubyte"), rng.integers(0, 255, (n, 10, 10), np.uint8))
        write_idx(str(folder / f"{split}-labels-idx1-ubyte"), rng.integers(0, 10, n).astype(np.uint8))
    code, _, err = cli(capsys, "eval", "--run", good_run, "--data-dir", folder)
    assert code == 2 and err.count("\n") == 1 and "corrupt" not in err and "100" in err and "64" in err, err


def test_stale_orbax_temp_folders_are_cleaned(good_run, tmp_path, capsys):
    run = damaged(good_run, tmp_path)
    stale = run / "checkpoints" / "99.orbax-checkpoint-tmp-1234"
    (stale / "state").mkdir(parents=True)
    config = json.loads((run / "config.json").read_text())
    write_atomic(str(run / "config.json"), json.dumps({**config, "epochs": 3}))
    assert cli(capsys, "train", "--resume", run)[0] == 0
    assert not stale.exists()


def test_a_second_train_of_one_run_is_refused(good_run, tmp_path, capsys):
    run = damaged(good_run, tmp_path)
    held = RunDir.open(str(run), lock=True)
    try:
        for command in (["train", "--resume", run], ["train", *TINY, "--out", run, "--overwrite"]):
            code, _, err = cli(capsys, *command)
            assert code == 2 and err.count("\n") == 1 and "in use" in err, err
    finally:
        held.release()


def test_divergence_after_the_first_epoch_keeps_its_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--optimizer", "sgd", "--lr", 1e7, "--schedule", "warmup_cosine", "--warmup-epochs", 100, "--epochs", 4]
    code, _, err = cli(capsys, "train", *QUIET, "--hidden", 16, *args, "--out", out)  # the default 30 s interval
    assert code == 3 and "epoch 2" in err and "last good checkpoint" in err, err
    assert [r["epoch"] for r in RunDir(str(out)).history.read_metrics()] == [1]
    assert restored_state(out)[1]["epoch"] == 1


def test_broken_pipe_is_quiet(good_run):
    read, write = os.pipe()
    os.close(read)  # `| head -1` that has already exited: every write fails with EPIPE
    proc = subprocess.run(
        [sys.executable, "-m", "jaxmlp", "eval", "--run", str(good_run)],
        stdout=write,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    os.close(write)
    assert proc.returncode == 141 and proc.stderr == b"", proc.stderr.decode()


# --- signals at every phase ----------------------------------------------------------------


def test_a_signal_stops_a_study_without_a_report(tmp_path, capsys, monkeypatch):
    update, sent = Progress.update, []

    def sigterm_once(self, n, loss):  # SIGTERM in the study's first training run
        update(self, n, loss)
        if not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))

    monkeypatch.setattr(Progress, "update", sigterm_once)
    code, out, err = cli(capsys, "study", "dropout", "--quick", "--epochs", 1, "--out", tmp_path / "study")
    assert code == 130 and "report" not in out and "Traceback" not in err
    assert not (tmp_path / "study").exists()


def start_train(out, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmlp", "train", *map(str, [*TINY, *args, "--out", out])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def test_sigterm_while_importing_and_sigint_while_compiling_stop_cleanly(tmp_path):
    proc = start_train(tmp_path / "a")
    while not catches(proc.pid, signal.SIGTERM):  # jaxmlp's handler is in: the imports are under way
        assert proc.poll() is None
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err == "interrupted\n", err

    proc = start_train(tmp_path / "b")
    assert proc.stdout.readline().startswith("training ")  # data loaded; fit() compiles next
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "nothing was written" in err and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []  # no run folder, no staging folder, no lock file


FAKE_CLI = """
import importlib.abc, importlib.util, os, sys

class FakeCli(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(os.environ["FAKE_CLI"], module.__dict__)

class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        return importlib.util.spec_from_loader(name, FakeCli()) if name == "jaxmlp.cli" else None

sys.meta_path.insert(0, Finder())
"""


def run_with_cli(tmp_path, source):
    """`python -m jaxmlp`, with `source` in place of the `jaxmlp.cli` module it loads (by a `sitecustomize`)."""
    (tmp_path / "sitecustomize.py").write_text(FAKE_CLI)
    return subprocess.run(
        [sys.executable, "-m", "jaxmlp"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "FAKE_CLI": source},
        timeout=60,
    )


def test_a_signal_while_the_command_loads_ends_it_without_raising_into_the_import(tmp_path):
    # a KeyboardInterrupt raised inside jaxlib's native initializers crashes the process, so none may be raised
    loading = "import os, signal, time\ntry:\n    os.kill(os.getpid(), signal.SIGTERM)\n    time.sleep(30)\n"
    proc = run_with_cli(tmp_path, loading + "finally:\n    print('unwound')")
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "", "interrupted\n")


def test_an_interrupt_that_passed_through_exec_still_exits_130(tmp_path):
    # CPython records it as unhandled, and `python -m` would then end by SIGINT (-2) despite the handler
    proc = run_with_cli(tmp_path, "def main(argv):\n    exec('raise KeyboardInterrupt')")
    assert (proc.returncode, proc.stderr) == (130, "interrupted\n")


# --- ownership: jaxmlp deletes, replaces and writes through nothing it did not make ---------------------------


def plant(folder, *names):
    """User files at `folder/NAME` (folders made as needed); returns {path: bytes} to check later."""
    planted = {}
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"user data: {name}\n".encode())
        planted[path] = path.read_bytes()
    return planted


def intact(planted):
    return all(p.is_file() and not p.is_symlink() and p.read_bytes() == b for p, b in planted.items())


def lookalike(folder):
    """What a Hugging Face model folder or a Lightning project has: config.json and checkpoints/, plus user files."""
    return plant(folder, "config.json", "checkpoints/epoch=3.ckpt", ".ssh/id_ed25519", "Documents/thesis.tex")


@pytest.mark.parametrize("case", ["lookalike", "run without marker", "symlink to a run", "a file", "root"])
def test_overwrite_replaces_only_a_marked_run(good_run, tmp_path, capsys, case):
    target = tmp_path / "target"
    planted = {}
    if case == "lookalike":
        planted = lookalike(target)
    elif case == "run without marker":
        damaged(good_run, tmp_path).rename(target)
        (target / "jaxmlp-run.json").unlink()
        planted = plant(target, "notes.txt")
    elif case == "symlink to a run":
        run = damaged(good_run, tmp_path)
        planted = plant(run, "notes.txt")
        target.symlink_to(run)
    elif case == "a file":
        planted = plant(tmp_path, "target")
    before = tree(tmp_path)
    out = "/" if case == "root" else target
    code, _, err = cli(capsys, "train", *TINY, "--out", out, "--overwrite")
    needle = {"lookalike": "not a jaxmlp run", "run without marker": "not a jaxmlp run", "a file": "is a file"}
    needle.update({"symlink to a run": "is a symlink", "root": "root folder"})
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:") and needle[case] in err, err
    assert intact(planted) and tree(tmp_path) == before  # nothing added, nothing removed, beside or inside


@pytest.mark.parametrize("out", [".", "../SELF", "..", "sub/.."])
def test_out_is_never_the_current_folder_or_above(good_run, tmp_path, capsys, monkeypatch, out):
    """Even when the current folder is a jaxmlp run: `--out .` would delete the folder the user stands in."""
    here = damaged(good_run, tmp_path)  # a real, marked run
    planted = plant(here, "sub/keep.txt", "user.txt")
    monkeypatch.chdir(here)
    before = tree(tmp_path)
    for overwrite in ([], ["--overwrite"]):
        code, _, err = cli(capsys, "train", *TINY, "--out", out.replace("SELF", "run"), *overwrite)
        assert code == 2 and err.count("\n") == 1 and ("current folder" in err), err
    assert intact(planted) and tree(tmp_path) == before


def test_overwrite_of_home_from_home_is_refused(tmp_path):
    """The issue's case: `cd ~ && jaxmlp train --dataset digits --epochs 1 --out ~ --overwrite`, HOME faked."""
    home = tmp_path / "home"
    planted = {**lookalike(home), **plant(home, ".bashrc")}
    (home / "jaxmlp-run.json").write_text('{"kind": "jaxmlp run", "format": 1, "id": "planted"}')  # even marked
    before = tree(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "jaxmlp", "train", *map(str, TINY), "--out", str(home), "--overwrite"],
        capture_output=True,
        text=True,
        cwd=home,
        timeout=180,
        env={**os.environ, "PYTHONPATH": ROOT, "HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "home folder" in r.stderr, r.stderr
    assert intact(planted) and tree(tmp_path) == before


def kill_before_publishing(path):
    """What a kill -9 after the staging folder was made leaves: the staging folder, with its marker, and the lock
    file, whose lock the kernel dropped."""
    run = RunDir.create(str(path), TrainConfig(dataset="digits").validate())
    run._stage()
    os.close(run._lock._fd)
    run._lock._fd = None


def test_leftovers_are_cleaned_next_to_a_new_run_and_nothing_else(tmp_path, capsys):
    parent = tmp_path / "runs"
    kill_before_publishing(parent / "killed")
    assert sorted(os.listdir(parent)) == [".killed.jaxmlp-lock", ".killed.jaxmlp-new"]
    planted = plant(tmp_path, "above.txt")
    planted.update(plant(parent, "beside.txt", ".foreign.jaxmlp-new/inside.txt", ".foreign2.jaxmlp-old/inside.txt"))
    planted.update(plant(parent, ".held.jaxmlp-new/inside.txt"))
    (parent / ".link.jaxmlp-lock").symlink_to(tmp_path / "above.txt")
    held = RunDir(str(parent / "held"), read_only=False)
    held._take_lock()  # a run in training: its leftovers are not leftovers
    try:
        assert cli(capsys, "train", *TINY, "--out", parent / "new")[0] == 0
    finally:
        held.release()
    left = sorted(os.listdir(parent))
    assert ".killed.jaxmlp-new" not in left and ".killed.jaxmlp-lock" not in left  # the killed run's, cleaned
    assert {".foreign.jaxmlp-new", ".foreign2.jaxmlp-old", ".held.jaxmlp-new", ".link.jaxmlp-lock"} <= set(left)
    assert intact(planted) and (parent / ".link.jaxmlp-lock").is_symlink()


def test_a_planted_link_at_a_run_write_site_is_one_line(good_run, tmp_path, capsys):
    victim = plant(tmp_path, "victim/important.txt")
    target = next(iter(victim))
    cases = {".new.jaxmlp-lock": ("new", target), ".new2.jaxmlp-new": ("new2", target.parent)}
    for link, (out, points_to) in cases.items():
        (tmp_path / link).symlink_to(points_to)
        code, _, err = cli(capsys, "train", *TINY, "--out", tmp_path / out)
        assert code == 2 and err.count("\n") == 1 and link in err, err
        assert not (tmp_path / out).exists() and (tmp_path / link).is_symlink()
    temp = damaged(good_run, tmp_path) / "checkpoints" / "99.orbax-checkpoint-tmp-1"
    temp.symlink_to(target.parent)  # a "temporary folder" that is a link: not followed, not removed
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    write_atomic(str(tmp_path / "run" / "config.json"), json.dumps({**config, "epochs": 3}))
    assert cli(capsys, "train", "--resume", tmp_path / "run")[0] == 0
    assert intact(victim) and temp.is_symlink()


@pytest.mark.parametrize("field, value", [("hidden", [32]), ("optimizer", "sgd")])
def test_a_config_edit_names_the_field_not_corruption(good_run, tmp_path, capsys, field, value):
    run = damaged(good_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    write_atomic(str(run / "config.json"), json.dumps({**config, field: value}))
    for command in (["eval", run], ["train", "--resume", run, "--epochs", 3]):
        code, _, err = cli(capsys, *command)
        assert code == 2 and err.count("\n") == 1 and "corrupt" not in err and "delete" not in err, err
        assert f"{field} = {json.dumps(value)}" in err and f'"{field}": {json.dumps(config[field])}' in err, err


def test_readers_never_write_and_say_a_run_is_training(good_run, tmp_path, capsys):
    run = damaged(good_run, tmp_path)
    stale = run / "checkpoints" / "99.orbax-checkpoint-tmp-1234"
    (stale / "state").mkdir(parents=True)
    held = RunDir.open(str(run), lock=True, read_only=False)
    try:
        before = tree(run)
        code, _, err = cli(capsys, "eval", run)
        assert code == 0 and f"training in progress (pid {os.getpid()}); showing checkpoint " in err, err
        assert tree(run) == before  # the "temporary folder" of the trainer is left alone
    finally:
        held.release()


EVAL_ARGS = ["--dataset", "digits", "--epochs", 40, "--batch-size", 16, "--hidden", 32, "--dropout", 0.2]
EVAL_ARGS += ["--chunks-per-epoch", 9, "--checkpoint-interval", 0, "--no-progress", "--no-figures"]


def readers_during_training(tmp_path, capsys, calls, epochs=40, frozen=False):
    """Train in a subprocess while up to `calls` evals and `calls` plots read the run (as many as fit in its
    training); it must end equal, bitwise, to an undisturbed run. Returns how many readers ran.

    `frozen`: each reader runs while the trainer is stopped (SIGSTOP) at a random moment of its training, perhaps
    in the middle of a write, then the trainer goes on (SIGCONT). The trainer then spends CPU only between readers,
    so a run of a few epochs outlasts them all; free-running readers race the trainer in the `frozen=False` case."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "jaxmlp", "train", *map(str, EVAL_ARGS), "--epochs", str(epochs), "--out"]
    ref = subprocess.Popen([*command, str(tmp_path / "ref")], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    out = tmp_path / "run"
    # Its epoch lines go nowhere: a pipe nobody reads fills up and blocks the trainer once its output outgrows the pipe.
    trainer = subprocess.Popen([*command, str(out)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    while not (out / "jaxmlp-run.json").exists():
        assert trainer.poll() is None
        time.sleep(0.05)
    seen, done, moments = [], 0, random.Random(0)
    while trainer.poll() is None and done < 2 * calls:
        if frozen:
            time.sleep(moments.uniform(0, 0.1))
            trainer.send_signal(signal.SIGSTOP)
        try:
            code, _, err = cli(capsys, ["eval", "plot"][done % 2], out)
        finally:
            if frozen:
                trainer.send_signal(signal.SIGCONT)
        assert "Traceback" not in err and "corrupt" not in err and (code == 0 or "training in progress" in err), err
        seen.append("training in progress" in err)
        done += 1
    assert trainer.wait(timeout=1800) == 0 and ref.wait(timeout=1800) == 0
    assert any(seen), "no reader ran while the trainer trained"
    assert_same_run(out, tmp_path / "ref")
    return done


def test_eval_and_plot_while_training_leave_the_trainer_undisturbed(tmp_path, capsys):
    assert readers_during_training(tmp_path, capsys, calls=3) >= 2


@pytest.mark.slow
def test_twenty_evals_and_twenty_plots_while_training(tmp_path, capsys):
    assert readers_during_training(tmp_path, capsys, calls=20, epochs=60, frozen=True) == 40


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--coordinator", "garbage", "--num-processes", 2], "--coordinator 'garbage'"),
        (["--coordinator", "host:99999", "--num-processes", 2], "--coordinator"),
    ],
)
def test_remaining_bad_input_is_one_line(tmp_path, capsys, args, needle):
    code, _, err = cli(capsys, "train", *TINY, *args, "--out", tmp_path / "x")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:") and needle in err, err


def test_warmup_longer_than_any_run_trains(tmp_path, capsys):
    code, _, err = cli(
        capsys, "train", *TINY, "--schedule", "warmup_cosine", "--warmup-epochs", 1e308, "--out", tmp_path
    )
    assert code == 0, err


def test_a_broken_recipe_file_is_one_line(tmp_path, capsys, monkeypatch):
    from jaxmlp import config

    (tmp_path / "broken.json").write_text('{"description": "half a reci')
    monkeypatch.setattr(config, "_recipe_files", lambda: {"broken": tmp_path / "broken.json"})
    for command in (["recipes"], ["train", "--recipe", "broken", "--out", tmp_path / "x"]):
        code, _, err = cli(capsys, *command)
        assert code == 2 and err.count("\n") == 1 and "broken.json" in err and "not valid JSON" in err, err


def test_a_file_where_figures_go_is_one_line(good_run, tmp_path, capsys):
    run = damaged(good_run, tmp_path)
    (run / "figures").write_text("a file, not a folder")
    code, _, err = cli(capsys, "plot", run)
    assert code == 2 and err.count("\n") == 1 and "figures" in err, err
    code, _, err = cli(capsys, "explain", "autograd", "--out", run / "figures")
    assert code == 2 and err.count("\n") == 1 and "figures" in err, err


def test_sighup_stops_a_run_like_sigterm(tmp_path):
    proc = start_train(tmp_path / "run", "--epochs", 200, "--checkpoint-interval", 0)
    while not proc.stdout.readline().startswith("epoch"):  # trained and checkpointed its first epoch
        assert proc.poll() is None
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Resume with" in out and "Traceback" not in err, (out, err)
    assert sorted(os.listdir(tmp_path)) == ["run"]  # no lock file, no staging folder


def test_bench_workers_die_with_their_parent(tmp_path):
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\nfrom benchmarks.common import die_with_parent\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], preexec_fn=die_with_parent)\n"
            "print(p.pid, flush=True)\ntime.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    worker = int(parent.stdout.readline())
    parent.kill()  # the benchmark dies: SIGKILL, which no inherited disposition (nohup's ignored SIGHUP) can block
    parent.wait(timeout=30)
    end = time.monotonic() + 10
    while _alive(worker):
        assert time.monotonic() < end, "the worker outlived its parent"
        time.sleep(0.05)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False
