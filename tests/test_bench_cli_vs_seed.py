"""benchmarks.cli_vs_seed times the seed's PyTorch loop and the real `jaxmlp train` on the same IDX files, with torch
and without it (then it still times `jaxmlp train` and says how to get the seed loop)."""

import json
import os
import statistics
import subprocess
import sys

import pytest

from benchmarks.throughput import toward_worse
from tests.helpers import ROOT, write_idx_dataset


def run_bench(tmp_path, *extra_path):
    data = write_idx_dataset(tmp_path / "idx", n_train=320, n_test=100)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, extra_path), ROOT])}
    cmd = [sys.executable, "-m", "benchmarks.cli_vs_seed", "--quick", "--data-dir", data, "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    for ext in ("json", "md", "png"):
        assert os.path.getsize(out / f"cli_vs_seed.{ext}") > 200, ext
    results = json.loads((out / "cli_vs_seed.json").read_text())
    assert results["command"] == " ".join(
        ["python -m benchmarks.cli_vs_seed", "--quick", "--data-dir", data, "--out", str(out)]
    )
    assert results["epochs"] == 2 and results["batch"] == 64 and results["rounds"] == 1
    rows = {r["system"]: r for r in results["rows"]}
    assert list(rows) == ["seed PyTorch loop", "jaxmlp train"]
    cli = rows["jaxmlp train"]
    assert "error" not in cli, cli
    check_timed_row(cli)
    return results, rows, (out / "cli_vs_seed.md").read_text(), r.stdout


def check_timed_row(row):
    """Two epochs, the first left out: the speed is the second epoch's, read from what the system reported."""
    assert [e["epoch"] for e in row["epochs"]] == [1, 2] and row["epochs_timed"] == [2]
    speeds = [e["samples_per_second"] for e in row["epochs"]]
    assert all(s > 0 for s in speeds)
    assert row["samples_per_s"] == statistics.median(speeds[1:]) == row["samples_per_s_min"]
    assert 0 < row["test_accuracy"] <= 1 and row["test_accuracy"] == row["epochs"][-1]["test_accuracy"]


def test_cli_vs_seed_quick_times_both_loops_and_their_ratio(tmp_path):
    pytest.importorskip("torch")
    results, rows, table, stdout = run_bench(tmp_path)
    seed, cli = rows["seed PyTorch loop"], rows["jaxmlp train"]
    assert "error" not in seed, seed
    check_timed_row(seed)
    assert seed["train_samples"] == 320  # every training image, the DataLoader's last short batch included
    assert results["ratio"] == pytest.approx(cli["samples_per_s"] / seed["samples_per_s"])
    shown = toward_worse(results["ratio"], 3, higher_is_better=True)
    assert f"`jaxmlp train` ÷ the seed's PyTorch loop, samples/s: {shown}x (batch 64, 2 epochs each" in table
    assert f"jaxmlp train ÷ seed PyTorch loop: {shown}x" in stdout


def test_cli_vs_seed_without_torch_times_jaxmlp_train_and_names_the_install(tmp_path):
    blocked = tmp_path / "block"
    (blocked / "torch").mkdir(parents=True)
    (blocked / "torch" / "__init__.py").write_text("raise ImportError('torch is blocked here')\n")
    results, rows, table, stdout = run_bench(tmp_path, blocked)
    assert rows["seed PyTorch loop"] == {
        "system": "seed PyTorch loop",
        "error": "torch is not installed: pip install torch==2.13.0 to time the seed loop",
    }
    assert results["ratio"] is None
    assert "| seed PyTorch loop | torch is not installed: pip install torch==2.13.0" in table
    assert "÷ the seed's PyTorch loop: not measured (a system failed)." in table and "÷ seed PyTorch" not in stdout


def test_cli_vs_seed_refuses_a_missing_data_folder(tmp_path):
    cmd = [sys.executable, "-m", "benchmarks.cli_vs_seed", "--data-dir", str(tmp_path / "nope"), "--out", tmp_path]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 2 and r.stderr.splitlines()[-1].endswith(
        f"error: --data-dir {tmp_path / 'nope'}: no such folder"
    )
    assert not list(tmp_path.iterdir())
