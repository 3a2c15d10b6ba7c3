"""Datasets: every source (TFDS, downloaded or local IDX files, scikit-learn's digits) ends as one `Dataset`.

A `Dataset` is four NumPy arrays, flattened and normalized once, on the host.
The trainer moves them to the device in one transfer and never touches the
host again during an epoch.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import sys

import numpy as np

from jaxmlp.data import download
from jaxmlp.data.idx import read_idx
from jaxmlp.errors import DataError
from jaxmlp.names import DATASETS, NORMALIZATIONS

# The class names TFDS gives each dataset's labels (tensorflow_datasets/image_classification/mnist.py); MNIST's
# and digits' classes are their digits, which label themselves.
CLASS_NAMES = {
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}  # fmt: skip


def class_names(dataset: str | None) -> tuple[str, ...] | None:
    """The names of `dataset`'s classes, or None where the class number is its name (MNIST, digits).

    A `--data-dir` run is named after its folder, so `fashion-mnist/` and `FashionMNIST/` find the names too.
    """
    key = (dataset or "").lower().replace("-", "_")
    return CLASS_NAMES.get({"fashionmnist": "fashion_mnist"}.get(key, key))


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Flattened float32 images and int32 labels, ready to be put on a device."""

    name: str
    x_train: np.ndarray  # (N, H*W) float32
    y_train: np.ndarray  # (N,) int32
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    num_classes: int
    background: float  # the normalized value of a blank pixel (used to pad shifted images)

    @property
    def num_features(self) -> int:
        return self.x_train.shape[1]


@dataclasses.dataclass(frozen=True)
class RawImages:
    """What a source returns: uint8-like images (N, H, W) with their intensity range."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    max_value: float  # 255 for MNIST-style data, 16 for digits


def _check_split(x: np.ndarray, y: np.ndarray, split: str, where: str) -> None:
    if len(x) != len(y):
        raise DataError(f"{where}: {split} has {len(x)} images but {len(y)} labels; the files do not belong together")
    if len(x) == 0:
        raise DataError(f"{where}: {split} split holds no data")


def normalize(raw: RawImages, name: str, how: str = "scale", num_classes: int = 10) -> Dataset:
    """Flatten, validate labels and normalize pixels: `scale` to [0, 1] or `standardize` with train statistics."""
    if how not in NORMALIZATIONS:
        raise DataError(f"unknown normalization {how!r}; choose one of {', '.join(NORMALIZATIONS)}")
    for split, x, y in (("train", raw.x_train, raw.y_train), ("test", raw.x_test, raw.y_test)):
        _check_split(x, y, split, name)
        bad = (y < 0) | (y >= num_classes)
        if bad.any():
            raise DataError(
                f"{name}: {split} label {int(y[bad][0])} is outside 0..{num_classes - 1}; the label file is corrupt"
            )
    if raw.x_train.shape[1:] != raw.x_test.shape[1:]:
        raise DataError(f"{name}: train images are {raw.x_train.shape[1:]} but test images are {raw.x_test.shape[1:]}")
    x_train = raw.x_train.reshape(len(raw.x_train), -1).astype(np.float32) / raw.max_value
    x_test = raw.x_test.reshape(len(raw.x_test), -1).astype(np.float32) / raw.max_value
    shift, scale = 0.0, 1.0
    if how == "standardize":
        shift, scale = float(x_train.mean()), float(x_train.std()) or 1.0
        x_train, x_test = (x_train - shift) / scale, (x_test - shift) / scale
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=raw.y_train.astype(np.int32),
        x_test=x_test,
        y_test=raw.y_test.astype(np.int32),
        image_shape=tuple(raw.x_train.shape[1:3]),
        num_classes=num_classes,
        background=(0.0 - shift) / scale,
    )


# --- sources ---------------------------------------------------------------


def _find_one(data_dir: str, prefix: str) -> str:
    matches = sorted(glob.glob(os.path.join(data_dir, prefix + "*")))
    if not matches:
        raise DataError(
            f"{data_dir}: no {prefix}* file; --data-dir needs train-images, train-labels, "
            "t10k-images and t10k-labels IDX files (gzip or raw), in it or in torchvision's NAME/raw under it"
        )
    if len(matches) > 1:
        gz = [m for m in matches if m.endswith(".gz")]
        if len(gz) == 1 and len(matches) == 2:  # foo and foo.gz: prefer the raw one
            return next(m for m in matches if not m.endswith(".gz"))
        raise DataError(f"{data_dir}: several {prefix}* files ({', '.join(map(os.path.basename, matches))}); keep one")
    return matches[0]


def idx_folder(data_dir: str) -> str:
    """The folder that holds the IDX files: `data_dir` itself, or torchvision's layout under it
    (`DATA_DIR/MNIST/raw`, `DATA_DIR/FashionMNIST/raw`, ...: the `root` given to `torchvision.datasets.MNIST`)."""
    if not os.path.isdir(data_dir):
        raise DataError(f"--data-dir {data_dir}: no such directory")
    if glob.glob(os.path.join(data_dir, "train-images*")):
        return data_dir
    patterns = (os.path.join(data_dir, "raw", "train-images*"), os.path.join(data_dir, "*", "raw", "train-images*"))
    nested = sorted({os.path.dirname(p) for pattern in patterns for p in glob.glob(pattern)})
    if len(nested) > 1:
        raise DataError(f"--data-dir {data_dir}: several datasets ({', '.join(nested)}); pass the one you want")
    return nested[0] if nested else data_dir


def load_idx_dir(data_dir: str) -> RawImages:
    """Read LeCun-format `train-*` / `t10k-*` IDX files (gzip or raw) from one folder (or torchvision's under it)."""
    data_dir = idx_folder(data_dir)
    parts = {}
    for split in ("train", "t10k"):
        parts[split + "_x"] = read_idx(_find_one(data_dir, f"{split}-images"), expected_ndim=3)
        parts[split + "_y"] = read_idx(_find_one(data_dir, f"{split}-labels"), expected_ndim=1)
    return RawImages(parts["train_x"], parts["train_y"], parts["t10k_x"], parts["t10k_y"], max_value=255.0)


def _sklearn_file(relative: str) -> str:
    """A data file shipped inside scikit-learn, found without importing it (the import alone takes seconds)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bundled digits come with scikit-learn: pip install scikit-learn")
    return os.path.join(spec.submodule_search_locations[0], relative)


def load_digits() -> RawImages:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16): the offline dataset.

    There is no official split, so a fixed, stratified 80/20 split is made.
    """
    table = np.loadtxt(_sklearn_file("datasets/data/digits.csv.gz"), delimiter=",")  # 64 pixels, then the label
    x, y = table[:, :-1].reshape(-1, 8, 8).astype(np.uint8), table[:, -1].astype(np.int64)
    rng = np.random.default_rng(0)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: len(idx) // 5]] = True
    return RawImages(x[~test], y[~test], x[test], y[test], max_value=16.0)


def _tfds_split(source) -> tuple[np.ndarray, np.ndarray]:
    # Index one record at a time: `__getitems__` is broken under tfds.testing.mock_data.
    n = len(source)
    first = source[0]
    images = np.empty((n,) + first["image"].shape[:2], dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int64)
    for i in range(n):
        record = source[i]
        images[i] = record["image"][..., 0]
        labels[i] = record["label"]
    return images, labels


def _prepared(name: str, data_dir: str | None) -> bool:
    import tensorflow_datasets as tfds
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # an absent dataset is an answer here, not a warning
    try:
        return tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # a broken cache reads as "not prepared"
        return False


def tfds_is_prepared(name: str, data_dir: str | None = None, seconds: float = download.PROBE_SECONDS) -> bool:
    """True when TFDS holds a prepared copy of `name`; a lookup slower than `seconds` (a remote data_dir) is False."""
    return download.Deadline(lambda: _prepared(name, data_dir), seconds, default=False).result()


def load_tfds(name: str, data_dir: str | None = None, download: bool = True) -> RawImages:
    """Load a TFDS image dataset through `tfds.data_source` (random access, no TensorFlow needed to read)."""
    import tensorflow_datasets as tfds

    builder_kwargs = {"file_format": "array_record"}
    train = tfds.data_source(name, split="train", data_dir=data_dir, download=download, builder_kwargs=builder_kwargs)
    test = tfds.data_source(name, split="test", data_dir=data_dir, download=download, builder_kwargs=builder_kwargs)
    x_train, y_train = _tfds_split(train)
    x_test, y_test = _tfds_split(test)
    return RawImages(x_train, y_train, x_test, y_test, max_value=255.0)


def available(name: str) -> bool:
    """Whether `name` can be had: prepared by TFDS, verified in the cache, or its server (or mirror) answers.

    With nothing cached the probe starts first and runs while TFDS is asked, so the whole answer takes
    about `download.PROBE_SECONDS` at most, never TFDS's minutes of retries.
    """
    online = None if download.has_files(name) else download.probe_dataset(name)
    if tfds_is_prepared(name) or download.cached(name) is not None:
        return True
    return bool((online or download.probe_dataset(name)).result())


def default_dataset(log=lambda msg: print(msg, file=sys.stderr)) -> str:
    """What a run that names no dataset trains on: MNIST when it can be had, else the bundled `digits`, with a
    notice. Resolved before the run is named, so its folder says which (`runs/<stamp>-mnist`)."""
    if available("mnist"):
        return "mnist"
    log(
        f"note: mnist is neither prepared by TFDS nor cached in {download.cache_dir('mnist')}, and its server is "
        "offline; training on the bundled 8x8 'digits' instead. For MNIST, connect once "
        f"(or set {download.MIRROR_ENV}) and run `jaxmlp data fetch mnist`, or pass --data-dir DIR with IDX files."
    )
    return "digits"


def load_named(name: str, log) -> RawImages:
    """`name` from a prepared TFDS copy, else from the verified IDX cache, else downloaded; an error offline
    (the probe runs while TFDS is asked, as in `available`)."""
    online = None if download.has_files(name) else download.probe_dataset(name)
    if tfds_is_prepared(name):
        return load_tfds(name, download=False)
    folder = download.cached(name)
    if folder is None:
        if not (online or download.probe_dataset(name)).result():
            raise DataError(
                f"{name} is neither prepared by TFDS nor cached in {download.cache_dir(name)}, and its server is "
                f"offline; connect (or set {download.MIRROR_ENV}), pass --data-dir DIR with IDX files, "
                "or use --dataset digits"
            )
        folder = download.fetch(name, log=log)
    return load_idx_dir(folder)


def load_dataset(
    name: str | None = None,
    data_dir: str | None = None,
    normalization: str = "scale",
    log=lambda msg: print(msg, file=sys.stderr),
) -> Dataset:
    """Resolve the user's choice to a `Dataset`.

    - `data_dir` given: read IDX files from it (`name` only labels the run).
    - `name` given: that dataset or a clear error (never a 200 s retry loop).
    - neither: `default_dataset()`, MNIST if cached or downloadable, else the bundled `digits`, with a notice.
    """
    if data_dir is not None:
        return normalize(load_idx_dir(data_dir), name or os.path.basename(os.path.normpath(data_dir)), normalization)
    if name is not None and name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, or pass --data-dir DIR")
    name = name or default_dataset(log)
    if name == "digits":
        return normalize(load_digits(), "digits", normalization)
    return normalize(load_named(name, log), name, normalization)


def validation_split(ds: Dataset, fraction: float, seed: int = 0) -> tuple[Dataset, tuple[np.ndarray, np.ndarray]]:
    """Hold out `fraction` of the training set (fixed permutation) for tuning without touching the test set."""
    n = len(ds.y_train)
    n_val = int(round(n * fraction))
    if not 0 < n_val < n:
        raise DataError(
            f"--val-fraction {fraction} leaves {n - n_val} training and {n_val} validation images; "
            "pick a value in (0, 1)"
        )
    perm = np.random.default_rng(seed).permutation(n)
    val, train = perm[:n_val], perm[n_val:]
    return (
        dataclasses.replace(ds, x_train=ds.x_train[train], y_train=ds.y_train[train]),
        (ds.x_train[val], ds.y_train[val]),
    )
