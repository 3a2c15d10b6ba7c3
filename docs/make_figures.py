"""Regenerate every figure and study report under docs/ with the project's own commands.

    make figures                               # uses data/mnist-mini when present, else digits
    python docs/make_figures.py --data-dir DIR # any folder of MNIST-style IDX files

Each step is an ordinary `jaxmlp` command, so what the docs show is what a user gets.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

DOCS = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(DOCS, "..", "data", "mnist-mini")  # python -m benchmarks.mnist_mini data/mnist-mini


def jaxmlp(*args: str) -> None:
    print("$ jaxmlp " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "jaxmlp", *args], check=True)


def publish(src: str, dst: str) -> None:
    """Replace docs/<dst> with the PNGs and report of `src`."""
    target = os.path.join(DOCS, dst)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    for f in (
        glob.glob(os.path.join(src, "*.png"))
        + glob.glob(os.path.join(src, "*.md"))
        + glob.glob(os.path.join(src, "*.dot"))
    ):
        shutil.copy(f, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir",
        default=DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) else None,
        help="IDX folder to train on (default: data/mnist-mini, else digits)",
    )
    args = parser.parse_args()
    data = ["--data-dir", args.data_dir] if args.data_dir else ["--dataset", "digits"]
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        jaxmlp("train", *data, "--epochs", "30", "--out", run, "--no-progress")
        publish(os.path.join(run, "figures"), "run")
        for study in ("optimizers", "dropout", "normalization"):
            jaxmlp("study", study, *data, "--out", os.path.join(tmp, study))
            publish(os.path.join(tmp, study), os.path.join("studies", study))
        jaxmlp("explain", "autograd", "--out", os.path.join(tmp, "autograd"))
        publish(os.path.join(tmp, "autograd"), "autograd")


if __name__ == "__main__":
    main()
