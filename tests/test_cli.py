"""The CLI end to end, in subprocesses, on small offline data."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import write_idx_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def jaxmlp(*args, cwd=None, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "jaxmlp", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def test_train_then_eval_on_idx_dir(tmp_path):
    data = write_idx_dataset(tmp_path / "idx", n_train=400, n_test=150)
    out = tmp_path / "run"
    r = jaxmlp("train", "--data-dir", data, "--epochs", 3, "--hidden", "32", "--batch-size", 32, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "done: test accuracy" in r.stdout and str(out) in r.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 3 and config["hidden"] == [32]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "samples_per_second"} <= set(
        rows[0]
    )
    assert (out / "checkpoints").is_dir()
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == [
        "confusion_matrix.png",
        "first_layer_weights.png",
        "layer_dynamics.png",
        "learning_curves.png",
        "misclassified.png",
    ]
    assert all((out / "figures" / f).stat().st_size > 10_000 for f in figures)
    (out / "figures" / "learning_curves.png").unlink()
    p = jaxmlp("plot", out)
    assert p.returncode == 0 and (out / "figures" / "learning_curves.png").exists(), p.stderr

    e = jaxmlp("eval", "--run", out)
    assert e.returncode == 0, e.stderr
    assert "150 test samples" in e.stdout and "confusion matrix" in e.stdout
    assert f"accuracy {rows[-1]['test_accuracy']:.4f}" in e.stdout

    again = jaxmlp("train", "--data-dir", data, "--epochs", 1, "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr  # never silently overwrite


def test_recipes_listed_and_overridable(tmp_path):
    r = jaxmlp("recipes")
    assert r.returncode == 0 and "mnist-small" in r.stdout and "fashion-mnist" in r.stdout
    out = tmp_path / "run"
    r = jaxmlp(
        "train",
        "--recipe",
        "mnist-small",
        "--dataset",
        "digits",
        "--epochs",
        1,
        "--hidden",
        "16",
        "--out",
        out,
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "mnist-small" and config["hidden"] == [16] and config["epochs"] == 1
    assert config["augment_shift"] == 2  # from the recipe


def test_help_explains_every_option():
    r = jaxmlp("train", "--help")
    assert r.returncode == 0
    for flag in (
        "--dataset",
        "--data-dir",
        "--epochs",
        "--batch-size",
        "--lr",
        "--optimizer",
        "--schedule",
        "--hidden",
        "--dropout",
        "--norm",
        "--seed",
        "--out",
        "--resume",
        "--recipe",
    ):
        assert flag in r.stdout
    assert "(default: adam)" in r.stdout and "(default: 128,64)" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--lr", "0"], "--lr"),
        (["--batch-size", "0"], "--batch-size"),
        (["--dropout", "1"], "--dropout"),
        (["--hidden", "0,5"], "--hidden"),
        (["--epochs", "0"], "--epochs"),
        (["--dataset", "cifar"], "unknown dataset"),
        (["--recipe", "nope"], "unknown recipe"),
        (["--batch-size", "100000", "--dataset", "digits"], "larger than"),
    ],
)
def test_bad_options_one_line_exit_2(tmp_path, args, needle):
    r = jaxmlp("train", *args, "--out", tmp_path / "x")
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr
