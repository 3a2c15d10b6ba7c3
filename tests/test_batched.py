"""jaxmlp.show.studies.batched: one vmapped program trains a grid of (learning rate, seed) runs, each as if alone."""

import jax
import numpy as np

from jaxmlp.data.datasets import load_dataset
from jaxmlp.show.studies.batched import Spec, init_params, train_grid

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


def test_a_warmup_schedule_starts_at_learning_rate_zero_then_rises():
    """warmup_cosine's first step has lr 0 (the second batch's loss is the untrained one), its second does not."""
    spec = Spec("sgd", hidden=(16,), epochs=1, batch_size=32)
    frozen = train_grid(spec, DATA, [0.0], [2])["step_loss"][0, 0]
    warm = train_grid(Spec(**{**spec.__dict__, "schedule": "warmup_cosine", "warmup_steps": 4}), DATA, [0.5], [2])
    constant = train_grid(spec, DATA, [0.5], [2])["step_loss"][0, 0]
    loss = warm["step_loss"][0, 0]
    np.testing.assert_allclose(loss[:2], frozen[:2], rtol=1e-6)  # step 1 moved nothing
    assert loss[2] != frozen[2] and loss[1] != constant[1]  # step 2 moved; a constant lr moves at step 1
