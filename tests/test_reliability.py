"""Reliability: fuzzed IDX input, divergence, interruption + exact resume, atomic and protected outputs."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxmlp.data import load_dataset
from jaxmlp.errors import DataError
from jaxmlp.files import write_atomic
from jaxmlp.idx import read_idx, write_idx
from jaxmlp.runs import RunDir
from jaxmlp.train import init
from tests.test_cli import ROOT, jaxmlp

TIMING = {"seconds", "samples_per_second"}


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
    t = time.perf_counter()
    with pytest.raises(DataError, match="limit"):
        read_idx(str(p), 3)
    assert time.perf_counter() - t < 1


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
    )
    assert r.returncode == 0
    cfg = json.loads((out2 / "config.json").read_text())
    cfg.update(lr=1e12, epochs=4)
    write_atomic(str(out2 / "config.json"), json.dumps(cfg))
    r = jaxmlp("train", "--resume", out2)
    assert r.returncode == 3 and "epoch 3" in r.stderr and "last good checkpoint" in r.stderr
    assert RunDir(str(out2)).checkpointer().latest_step() == 2 * (1442 // 64)


# --- interruption and exact resume ------------------------------------------------


def _state(run_dir):
    run = RunDir.open(str(run_dir))
    cfg = run.config()
    _, like = init(cfg, load_dataset(cfg.dataset, cfg.data_dir, cfg.normalization))
    state, meta = run.checkpointer().restore(like)
    return state, meta


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_kill_at_random_moment_then_resume_is_bitwise_identical(tmp_path, sig):
    args = [
        "--dataset",
        "digits",
        "--epochs",
        30,
        "--batch-size",
        8,
        "--hidden",
        "512,256",
        "--dropout",
        "0.2",
        "--chunks-per-epoch",
        20,
        "--no-progress",
    ]
    ref = tmp_path / "ref"
    assert jaxmlp("train", *args, "--out", ref).returncode == 0

    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "jaxmlp", "train", *map(str, args), "--out", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    first = proc.stdout.readline() + proc.stdout.readline()  # the banner, then epoch 1 is done: training is under way
    assert "epoch   1/30" in first, first + proc.stderr.read()
    time.sleep(random.Random().uniform(0, 1.5))
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("training finished before the signal arrived")  # a too-fast machine; nothing to resume
    assert proc.returncode == 130, err
    assert f"jaxmlp train --resume {run}" in out
    _, meta = _state(run)
    assert meta["epoch"] < 30

    resumed = jaxmlp("train", "--resume", run)
    assert resumed.returncode == 0, resumed.stderr
    assert _strip(RunDir(str(run)).read_metrics()) == _strip(RunDir(str(ref)).read_metrics())
    a, _ = _state(run)
    b, _ = _state(ref)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    steps_run, steps_ref = RunDir(str(run)).read_steps(), RunDir(str(ref)).read_steps()
    assert set(steps_run) == {"loss", "stats_step", "grad_norm", "update_ratio", "layers"}
    for k in steps_ref:
        np.testing.assert_array_equal(steps_run[k], steps_ref[k])


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
    assert jaxmlp("train", "--dataset", "digits", "--epochs", 1, "--hidden", "16", "--out", out).returncode == 0
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
