import gzip
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxmlp.data import datasets as data
from jaxmlp.data.idx import read_idx, write_idx
from jaxmlp.errors import DataError
from tests.helpers import write_idx_dataset


def test_idx_roundtrip_gzip_and_raw(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(str(tmp_path / name), a)
        np.testing.assert_array_equal(read_idx(str(tmp_path / name), 3), a)


def test_idx_dir_loads_and_normalizes(tmp_path):
    folder = write_idx_dataset(tmp_path / "d", n_train=50, n_test=20, gz=False)
    ds = data.load_dataset(data_dir=folder, normalization="scale")
    assert ds.x_train.shape == (50, 64) and ds.x_test.shape == (20, 64)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.image_shape == (8, 8)
    std = data.load_dataset(data_dir=folder, normalization="standardize")
    assert abs(std.x_train.mean()) < 1e-5 and abs(std.x_train.std() - 1) < 1e-4
    assert std.background == pytest.approx((0 - ds.x_train.mean()) / ds.x_train.std(), rel=1e-4)


def _header(ndim, dims, code=0x08):
    return bytes([0, 0, code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x02\x08\x03" + b"\x00" * 20, "magic number"),
        (_header(3, [1, 2, 2], code=0x0D) + b"\x00" * 16, "magic number"),
        (_header(2, [2, 2]) + b"\x00" * 4, "dimensions"),
        (_header(3, [2, 2, 2]) + b"\x00" * 5, "truncated"),
        (_header(3, [2, 2, 2]) + b"\x00" * 9, "after"),
        (_header(3, [0, 28, 28]), "no data"),
        (_header(3, [10**9, 28, 28]) + b"\x00" * 100, "limit"),
        (_header(3, [5]), "truncated header"),
    ],
)
def test_idx_corrupt_files_give_clear_errors(tmp_path, content, message):
    p = tmp_path / "x.idx"
    p.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_idx(str(p), 3)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    p = tmp_path / "x.idx.gz"
    p.write_bytes(gzip.compress(_header(3, [4, 4, 4]) + b"\x00" * 64)[:-12])
    with pytest.raises(DataError):
        read_idx(str(p), 3)


def test_mismatched_counts_and_bad_labels(tmp_path):
    folder = write_idx_dataset(tmp_path / "d", n_train=30, n_test=10, gz=False)
    write_idx(os.path.join(folder, "train-labels-idx1-ubyte"), np.zeros(29, np.uint8))
    with pytest.raises(DataError, match="30 images but 29 labels"):
        data.load_dataset(data_dir=folder)
    write_idx(os.path.join(folder, "train-labels-idx1-ubyte"), np.full(30, 12, np.uint8))
    with pytest.raises(DataError, match="label 12 is outside 0..9"):
        data.load_dataset(data_dir=folder)


def test_missing_files_and_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="no train-images"):
        data.load_dataset(data_dir=str(tmp_path))
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        data.load_dataset("cifar")


def test_tfds_path_on_mock_data():
    with tfds.testing.mock_data(num_examples=24):
        raw = data.load_tfds("mnist")
    assert raw.x_train.shape == (24, 28, 28) and raw.x_train.dtype == np.uint8
    assert raw.y_train.shape == (24,) and set(np.unique(raw.y_train)) <= set(range(10))
    ds = data.normalize(raw, "mnist")
    assert ds.x_train.shape == (24, 784) and ds.num_classes == 10


def test_validation_split_is_disjoint_and_fixed():
    ds = data.load_dataset("digits")
    train, (xv, yv) = data.validation_split(ds, 0.25, seed=3)
    assert len(train.y_train) + len(yv) == len(ds.y_train)
    rows = {r.tobytes() for r in train.x_train}
    assert not any(r.tobytes() in rows for r in xv[:50])
    _, (xv2, _) = data.validation_split(ds, 0.25, seed=3)
    np.testing.assert_array_equal(xv, xv2)


def test_digits_are_scikit_learns_read_without_importing_it():
    from sklearn.datasets import load_digits

    raw, ref = data.load_digits(), load_digits()
    x = np.concatenate([raw.x_train, raw.x_test]).reshape(len(ref.target), -1)
    y = np.concatenate([raw.y_train, raw.y_test])
    assert sorted(map(bytes, np.c_[x, y].astype(np.uint8))) == sorted(
        map(bytes, np.c_[ref.data, ref.target].astype(np.uint8))
    )
    assert raw.x_train.shape[1:] == (8, 8) and raw.max_value == 16.0


def test_torchvisions_layout_is_found_under_data_dir(tmp_path):
    """`torchvision.datasets.MNIST(root="data", download=True)` leaves data/MNIST/raw; --data-dir data finds it."""
    write_idx_dataset(tmp_path / "data" / "MNIST" / "raw", n_train=30, n_test=10, gz=False)
    ds = data.load_dataset(data_dir=str(tmp_path / "data"))
    assert ds.x_train.shape == (30, 64) and len(ds.y_test) == 10
    write_idx_dataset(tmp_path / "data" / "FashionMNIST" / "raw", n_train=30, n_test=10)
    with pytest.raises(DataError, match="several datasets.*FashionMNIST.*MNIST"):
        data.load_dataset(data_dir=str(tmp_path / "data"))
    with pytest.raises(DataError, match="torchvision's NAME/raw"):
        data.load_dataset(data_dir=str(tmp_path))
