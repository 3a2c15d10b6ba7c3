"""Shared fixtures: small IDX datasets written by the tests themselves (no network, no ../shared)."""

import os

import numpy as np
import pytest
from hypothesis import settings

from jaxmlp.data import load_digits
from jaxmlp.idx import write_idx


def write_idx_dataset(folder, n_train=300, n_test=120, gz=True):
    """Real handwritten digits (scikit-learn's 8x8, scaled to 0..255) in LeCun's IDX layout."""
    raw = load_digits()
    ext = ".gz" if gz else ""
    os.makedirs(folder, exist_ok=True)
    to_u8 = lambda x: np.minimum(x.astype(np.int32) * 16, 255).astype(np.uint8)
    write_idx(os.path.join(folder, "train-images-idx3-ubyte" + ext), to_u8(raw.x_train[:n_train]))
    write_idx(os.path.join(folder, "train-labels-idx1-ubyte" + ext), raw.y_train[:n_train].astype(np.uint8))
    write_idx(os.path.join(folder, "t10k-images-idx3-ubyte" + ext), to_u8(raw.x_test[:n_test]))
    write_idx(os.path.join(folder, "t10k-labels-idx1-ubyte" + ext), raw.y_test[:n_test].astype(np.uint8))
    return str(folder)


@pytest.fixture
def idx_dir(tmp_path):
    return write_idx_dataset(tmp_path / "idx")


# Hypothesis: a quick random profile for development, and a larger derandomized one for CI (set CI=1, or pass
# --hypothesis-profile ci), so a CI failure reproduces exactly and a green CI run means the same examples passed.
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
