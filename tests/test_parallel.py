"""Data parallelism: 8 CPU devices in one process, and 2 processes on localhost, each equal to 1 device."""

import glob
import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, jaxmlp


def worker(*args, devices_flag=None, dump_hlo=None):
    """Start tests/parallel_worker.py; `dump_hlo`: a folder for the HLO XLA compiled for the training chunk."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    flags = []
    if devices_flag:
        flags.append(f"--xla_force_host_platform_device_count={devices_flag}")  # before jax initializes
    if dump_hlo:
        flags += [f"--xla_dump_to={dump_hlo}", "--xla_dump_hlo_as_text", "--xla_dump_hlo_module_re=run_chunk"]
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.parallel_worker", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    lines = [line for line in out.splitlines() if line.startswith("{")]  # gloo prints its own lines too
    return json.loads(lines[-1]) if lines else None


def compiled_chunk(dump_hlo) -> str:
    """The optimized HLO of the training run's one compiled chunk (`make_train_chunk`'s `run_chunk`)."""
    (path,) = glob.glob(os.path.join(dump_hlo, "*jit_run_chunk*after_optimizations.txt"))
    with open(path) as f:
        return f.read()


def first_layer_rows(hlo: str) -> set[int]:
    """Batch rows of the first hidden layer's forward product (digits: 64 features in, 32 units out) as compiled."""
    return {int(rows) for rows in re.findall(r"= f32\[(\d+),32\]\S* dot\(", hlo)} - {
        10
    }  # 10 rows: the head's kernel gradient (10, 32)


def gradient_all_reduces(hlo: str) -> list[str]:
    """The all-reduce instructions that carry the first layer's kernel gradient (64x32, in either layout)."""
    return [line for line in hlo.splitlines() if " all-reduce(" in line and re.search(r"f32\[(64,32|32,64)\]", line)]


def assert_same_training(a, b, rtol):
    for ra, rb in zip(a["metrics"], b["metrics"], strict=True):
        for k in ra:
            # an accuracy may flip by a sample or two (2/355) where a logit is nearly tied
            atol = 2 / 355 + 1e-9 if k.endswith("accuracy") and rtol > 1e-5 else 1e-6
            np.testing.assert_allclose(ra[k], rb[k], rtol=rtol, atol=atol, err_msg=k)
    for pa, pb in zip(a["params"], b["params"], strict=True):
        np.testing.assert_allclose(pa, pb, rtol=rtol, atol=1e-6)


# Sharding changes only the order of the sums behind the gradient all-reduce: ~1e-7 apart without batch norm.
# With batch norm, the reordered batch statistics divide the activations and the differences grow to ~1e-5;
# 1e-3 still catches any real error (a per-device batch norm, say, is off by far more).
@pytest.mark.parametrize("norm, rtol", [("none", 1e-5), ("batch", 1e-3)])
def test_eight_devices_equal_one(norm, rtol, tmp_path):
    one = result(worker(1, norm, devices_flag=8, dump_hlo=tmp_path / "one"))
    eight = result(worker("all", norm, devices_flag=8, dump_hlo=tmp_path / "eight"))
    assert one["devices"] == eight["devices"] == 8
    assert_same_training(one, eight, rtol)
    # What the run compiled: on 8 devices each computes its 64 / 8 = 8 rows of the batch, and the gradients are
    # summed over the devices by an all-reduce; on one device the whole batch of 64 and no all-reduce.
    hlo_one, hlo_eight = compiled_chunk(tmp_path / "one"), compiled_chunk(tmp_path / "eight")
    assert first_layer_rows(hlo_eight) == {8} and gradient_all_reduces(hlo_eight)
    assert first_layer_rows(hlo_one) == {64} and not gradient_all_reduces(hlo_one)


def test_two_processes_train_together_like_one():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    coordinator = f"127.0.0.1:{port}"
    procs = [worker("all", "none", coordinator, 2, pid) for pid in range(2)]
    results = [result(p) for p in procs]
    together = results[0]
    assert together["processes"] == 2 and together["devices"] == 2
    single = result(worker(1, "none"))
    assert_same_training(single, together, 1e-5)


def test_a_run_trained_on_eight_devices_is_evaluated_on_one(tmp_path, monkeypatch):
    """A checkpoint saved from a mesh of 8 devices reads back in a process that has one (this one)."""
    import jax

    from jaxmlp.runs.evaluate import evaluate_run

    out = tmp_path / "run"
    with monkeypatch.context() as env:
        env.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
        args = ["--dataset", "digits", "--epochs", 1, "--hidden", 16, "--devices", 8, "--no-progress", "--no-figures"]
        trained = jaxmlp("train", *args, "--out", out)
    assert trained.returncode == 0, trained.stderr
    assert len(jax.devices()) == 1
    report, _ = evaluate_run(str(out))
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert report.accuracy == pytest.approx(last["test_accuracy"], abs=2 / 355)  # a near-tied logit may flip
