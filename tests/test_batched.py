"""jaxmlp.studies.batched: one vmapped program trains a grid of (learning rate, seed) runs, each as if alone."""

import jax
import numpy as np

from jaxmlp.data import load_dataset
from jaxmlp.studies.batched import Spec, init_params, train_grid

DS = load_dataset("digits", normalization="standardize")
DATA = {"train": (DS.x_train[:256], DS.y_train[:256]), "test": (DS.x_test[:128], DS.y_test[:128])}
SPEC = Spec("adam", hidden=(16,), epochs=2, batch_size=32)


def test_each_run_of_a_grid_equals_that_run_alone():
    grid = train_grid(SPEC, DATA, [1e-3, 1e-2], [0, 1])
    alone = train_grid(SPEC, DATA, [1e-2], [1])
    assert grid["step_loss"].shape == (2, 2, 2 * 256 // 32) and grid["test_accuracy"].shape == (2, 2, 2)
    np.testing.assert_allclose(grid["step_loss"][1, 1], alone["step_loss"][0, 0], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grid["params"]), jax.tree.leaves(alone["params"])):
        np.testing.assert_allclose(a[1, 1], b[0, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(grid["step_loss"][1, 0], grid["step_loss"][1, 1])  # seeds differ


def test_runs_start_from_the_seeds_initialization_and_learn():
    frozen = train_grid(Spec("sgd", hidden=(16,), epochs=1, batch_size=32), DATA, [0.0], [3])
    _, start, _ = init_params(SPEC, DS.num_features, DS.num_classes, 3)
    for a, b in zip(jax.tree.leaves(frozen["params"]), jax.tree.leaves(start)):
        np.testing.assert_array_equal(a[0, 0], b)  # lr 0: nothing moves
    trained = train_grid(Spec("adam", hidden=(16,), epochs=5, batch_size=32), DATA, [1e-2], [3])
    assert trained["test_accuracy"][0, 0, -1] > 0.6 > frozen["test_accuracy"][0, 0, -1]
