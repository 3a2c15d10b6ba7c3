"""Red team: kill -9 at the commit boundaries and at random moments, SIGTERM in every phase, read-only and full
output disks, concurrent resumes, flipped checkpoint bytes. Every case must end in a clear one-line error or in
a resume that reproduces the uninterrupted run bitwise, and no case may print a traceback.

The kills at the dangerous boundaries are placed exactly by `python -m tests.crash` (see `tests/crash.py`); the
random kills use fixed seeds. Subprocesses share a JAX compilation cache, so most of their time is import.
"""

import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, assert_same_run, catches

pytestmark = pytest.mark.slow

ARGS = ["--dataset", "digits", "--epochs", 3, "--batch-size", 16, "--hidden", 32, "--dropout", 0.2]
ARGS += ["--chunks-per-epoch", 9, "--checkpoint-interval", 0, "--no-progress", "--no-figures"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("xla-cache")
    return {
        **os.environ,
        "PYTHONPATH": ROOT,
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }


def start(env, *args, crash_at=None, **kw):
    """`jaxmlp ARGS` in a subprocess; `crash_at="POINT:N"` kills it there (see `tests/crash.py`)."""
    return subprocess.Popen(
        [sys.executable, "-m", *(["tests.crash", crash_at] if crash_at else ["jaxmlp"]), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**env, **kw.pop("extra_env", {})},
        **kw,
    )


def run(env, *args, **kw):
    proc = start(env, *args, **kw)
    out, err = proc.communicate(timeout=300)
    assert "Traceback" not in out + err, err
    return proc.returncode, out, err


def one_error(code, err, needle=""):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err


@pytest.fixture(scope="module")
def ref(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert run(env, "train", *ARGS, "--out", out)[0] == 0
    return out


def finish(env, path, ref):
    """What a user does after a crash: resume; if there is no run yet, start it again. It must equal `ref`."""
    code, out, err = run(env, "train", "--resume", path)
    if code == 2 and "not a run directory" in err:
        code, out, err = run(env, "train", *ARGS, "--out", path)
    assert code == 0, err
    assert_same_run(path, ref)
    assert sorted(os.listdir(os.path.dirname(path))) == [os.path.basename(path)]  # no staging, copy or lock left


@pytest.mark.parametrize(
    "point",
    ["files-written:1", "checkpoint-committed:1", "files-written:2", "checkpoint-committed:2", "old-run-moved-aside"],
)
def test_kill_at_each_commit_boundary(env, ref, tmp_path, point):
    path = tmp_path / "run"
    overwrite = []
    if point == "old-run-moved-aside":
        shutil.copytree(ref, path)
        overwrite = ["--overwrite"]
    code, _, _ = run(env, "train", *ARGS, "--out", path, *overwrite, crash_at=point)
    assert code == -signal.SIGKILL
    finish(env, path, ref)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_at_a_random_moment(env, ref, tmp_path, seed):
    path = tmp_path / "run"
    proc = start(env, "train", *ARGS, "--out", path)
    assert proc.stdout.readline().startswith("training ")
    time.sleep(random.Random(seed).uniform(0, 3))
    proc.kill()
    proc.communicate()
    finish(env, path, ref)


def test_sigterm_in_every_phase(env, ref, tmp_path):
    # import
    proc = start(env, "train", *ARGS, "--out", tmp_path / "a")
    while not catches(proc.pid, signal.SIGTERM):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and not (tmp_path / "a").exists(), err
    # compilation
    proc = start(env, "train", *ARGS, "--out", tmp_path / "b")
    assert proc.stdout.readline().startswith("training ") and proc.stdout.readline().startswith("compiling")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and not (tmp_path / "b").exists(), err
    # training: after the first epoch's line, then resumed
    proc = start(env, "train", *ARGS, "--out", tmp_path / "c")
    lines = iter(proc.stdout.readline, "")
    assert next(lines).startswith("training ") and any(line.startswith("epoch") for line in lines)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Resume with" in out and "Traceback" not in err, err
    finish(env, tmp_path / "c", ref)
    # a study
    proc = start(env, "study", "dropout", "--quick", "--out", tmp_path / "study")
    assert proc.stderr.readline()  # its first progress line: training is under way
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and not (tmp_path / "study").exists(), err


# `python -m jaxmlp eval ...`, but once the first evaluation is done it touches the file argv[1] names and from then
# on evaluates again and again: a signal sent after the file appears lands while eval is at work.
EVAL_AT_WORK = """
import runpy, sys
import jaxmlp.runs.evaluate as evaluate

real, marker = evaluate.evaluate_state, sys.argv.pop(1)

def at_work(config, ds, state):
    real(config, ds, state)
    open(marker, "w").close()
    while True:
        real(config, ds, state)

evaluate.evaluate_state = at_work
sys.argv[0] = "jaxmlp"
runpy.run_module("jaxmlp", run_name="__main__", alter_sys=True)
"""


def test_sigterm_while_eval_is_at_work_ends_it_with_130_and_no_report(env, ref, tmp_path):
    marker = tmp_path / "evaluating"
    command = [sys.executable, "-c", EVAL_AT_WORK, str(marker), "eval", "--run", str(ref)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    end = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "eval never finished its first evaluation"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, out, err.splitlines()) == (130, "", ["interrupted"]), err


def half_run(env, ref, path):
    """A run stopped after its first epoch's checkpoint."""
    code, _, _ = run(env, "train", *ARGS, "--out", path, crash_at="files-written:2")
    assert code == -signal.SIGKILL


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(size)`: a fresh tmpfs of that size (as root), else None; unmounted afterwards."""
    mounts = []

    def mount(size):
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder]
        if os.geteuid() != 0 or subprocess.run(command).returncode:
            return None
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", "-l", folder])


def test_full_disk_is_one_error_and_keeps_the_last_checkpoint(env, ref, tmp_path, tmpfs):
    small_disk, limit = tmpfs("400k"), {}  # room for two checkpoints of this model, not three
    if small_disk is None:  # no tmpfs: limit the size of every file this process writes instead
        small_disk = tmp_path / "disk"
        limit = {"preexec_fn": lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))}
    path = small_disk / "run"
    code, out, err = run(env, "train", *ARGS, "--out", path, **limit)
    one_error(code, err, "free space")
    assert set(os.listdir(small_disk)) <= {"run"}  # no staging folder or lock file left on the full disk
    moved = tmp_path / "moved" / "run"
    if path.exists():
        shutil.copytree(path, moved)
    finish(env, moved, ref)


def test_read_only_folder_is_one_error(env, ref, tmp_path, tmpfs):
    disk = tmpfs("16m")
    folder = disk or tmp_path / "ro"
    folder.mkdir(exist_ok=True)
    half_run(env, ref, tmp_path / "half")
    shutil.copytree(tmp_path / "half", folder / "run")
    if disk is not None:
        assert subprocess.run(["mount", "-o", "remount,ro", folder]).returncode == 0
    else:
        os.chmod(folder, 0o555)
        os.chmod(folder / "run", 0o555)
    one_error(*run(env, "train", "--resume", folder / "run")[::2], "cannot write")
    one_error(*run(env, "train", *ARGS, "--out", folder / "new")[::2], "cannot write")


def test_concurrent_resumes_one_wins(env, ref, tmp_path):
    path = tmp_path / "run"
    half_run(env, ref, path)
    procs = [start(env, "train", "--resume", path) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    assert sorted(r[0] for r in results)[0] == 0, results
    for code, _, err in results:
        assert "Traceback" not in err
        if code:
            one_error(code, err, "in use")
    assert_same_run(path, ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_flipped_bytes_in_a_checkpoint(env, ref, tmp_path, seed):
    path = tmp_path / "run"
    half_run(env, ref, path)
    rng = random.Random(seed)
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(path / "checkpoints") for f in fs)
    for victim in rng.sample(files, 2):
        data = bytearray(open(victim, "rb").read())
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            open(victim, "wb").write(bytes(data))
    code, _, err = run(env, "train", "--resume", path)
    if code:
        one_error(code, err, "corrupt")
    else:
        assert_same_run(path, ref)
