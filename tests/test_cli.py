"""The CLI end to end, in subprocesses, on small offline data."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, jaxmlp, write_idx_dataset


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
    p = jaxmlp("plot", "--run", out)  # the option spelling of the positional RUN_DIR
    assert p.returncode == 0 and (out / "figures" / "learning_curves.png").exists(), p.stderr

    e = jaxmlp("eval", out)
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
        "--no-figures",
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
        (["--hidden", "128", "64"], "comma-separated, as --hidden 128,64"),
        (["--batch-size", "100000", "--dataset", "digits"], "larger than"),
    ],
)
def test_bad_options_one_line_exit_2(tmp_path, args, needle):
    r = jaxmlp("train", *args, "--out", tmp_path / "x")
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_typo_suggests_the_nearest_option_under_the_subcommand_usage():
    r = jaxmlp("train", "--epocs", 3)
    assert r.returncode == 2
    assert "usage: jaxmlp train" in r.stderr and "did you mean --epochs" in r.stderr, r.stderr


def test_choices_ignore_case_and_dashes_and_old_spellings_still_work(capsys):
    from jaxmlp.cli import build_parser, config_from_args

    args = build_parser().parse_args(
        [
            "train",
            "--optimizer",
            "Adam",
            "--activation",
            "ReLU",
            "--dataset",
            "Fashion-MNIST",
            "--recipe",
            "MNIST_small",
        ]
        + ["--schedule", "Warmup-Cosine", "--pixel-scaling", "Scale", "--hidden-norm", "Batch"]
    )
    config = config_from_args(args)
    assert (config.optimizer, config.activation, config.dataset, config.recipe) == (
        "adam",
        "relu",
        "fashion_mnist",
        "mnist-small",
    )
    assert (config.schedule, config.normalization, config.norm) == ("warmup_cosine", "scale", "batch")
    old = config_from_args(build_parser().parse_args(["train", "--normalization", "scale", "--norm", "layer"]))
    assert (old.normalization, old.norm) == ("scale", "layer")
    err = capsys.readouterr().err
    assert "--normalization is the old spelling of --pixel-scaling" in err and "--norm is the old spelling" in err


def test_recipes_show_what_they_set():
    r = jaxmlp("recipes", "Mnist_Small")
    assert r.returncode == 0, r.stderr
    assert "--augment-shift 2" in r.stdout and "--hidden 1024,1024" in r.stdout and "fashion" not in r.stdout
    every = jaxmlp("recipes")
    assert "--dataset fashion_mnist" in every.stdout and "--augment-shift 2" in every.stdout


def test_resume_extends_a_run_and_says_when_it_is_complete(tmp_path):
    common = ["--dataset", "digits", "--hidden", "16", "--no-progress", "--no-figures"]
    short, full = tmp_path / "short", tmp_path / "full"
    assert jaxmlp("train", *common, "--epochs", 2, "--out", short).returncode == 0
    again = jaxmlp("train", "--resume", short, "--no-figures")
    assert again.returncode == 0 and "is complete (2 of 2 epochs)" in again.stdout, again.stderr
    assert "--epochs 12" in again.stdout and "training" not in again.stdout  # nothing compiled or trained
    longer = jaxmlp("train", "--resume", short, "--epochs", 3, "--no-progress", "--no-figures")
    assert longer.returncode == 0, longer.stderr
    assert json.loads((short / "config.json").read_text())["epochs"] == 3
    assert jaxmlp("train", *common, "--epochs", 3, "--out", full).returncode == 0
    rows = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (short, full)]
    assert [r["epoch"] for r in rows[0]] == [1, 2, 3]
    assert [r["test_loss"] for r in rows[0]] == [r["test_loss"] for r in rows[1]]  # as if trained 3 epochs at once
    fewer = jaxmlp("train", "--resume", short, "--epochs", 2)
    assert fewer.returncode == 2 and "already trained 3 epochs" in fewer.stderr


def test_jaxmlp_alone_lists_every_command_on_one_line():
    r = jaxmlp()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for command in ("train", "eval", "plot", "recipes", "study", "explain", "data"):
        (line,) = [x for x in lines if x.split()[:1] == [command]]  # exactly one line names it first
        assert len(line.split()) > 2  # and says what it does
    assert "jaxmlp COMMAND --help" in r.stdout


def test_a_run_with_no_dataset_is_named_after_the_dataset_it_falls_back_to(tmp_path):
    """Offline with nothing cached, `jaxmlp train` trains on digits: its folder says `digits`, never `auto`."""
    import socket

    with socket.socket() as s:  # a loopback port where nothing listens: the mirror refuses at once
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    env = {**os.environ, "PYTHONPATH": ROOT, "JAXMLP_DATA_MIRROR": dead}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), TFDS_DATA_DIR=str(tmp_path / "tfds"))
    args = ["train", "--epochs", "1", "--hidden", "8", "--no-progress", "--no-figures"]
    r = subprocess.run([sys.executable, "-m", "jaxmlp", *args], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "training on the bundled 8x8 'digits' instead" in r.stderr
    (run,) = os.listdir(tmp_path / "runs")
    assert run.endswith("-digits") and len(run) == len("20261203-140000-digits")
    assert json.loads((tmp_path / "runs" / run / "config.json").read_text())["dataset"] == "digits"
