"""jaxmlp and the user's PyTorch model compute the same losses, step by step, and end with the same parameters,
from the same weights and batches."""

import jax
import numpy as np
import pytest

from jaxmlp.config import TrainConfig
from jaxmlp.core.train import init, linear_biases, linear_kernels, train_step
from jaxmlp.data.datasets import load_dataset

torch = pytest.importorskip("torch")
from benchmarks.torch_reference import MLP, load_flax_params, train_steps  # noqa: E402

STEPS = 100


@pytest.fixture(scope="module")
def batches():
    ds = load_dataset("digits", normalization="standardize")
    # The user's 784-input model needs 28x28 images: pad the 8x8 digits into the middle of a 28x28 canvas.
    imgs = np.zeros((len(ds.y_train), 28, 28), np.float32)
    imgs[:, 10:18, 10:18] = ds.x_train.reshape(-1, 8, 8)
    x = imgs.reshape(len(imgs), -1)
    order = np.random.default_rng(0).permutation(len(x))
    return [
        (x[order[i * 64 : (i + 1) * 64]], ds.y_train[order[i * 64 : (i + 1) * 64]]) for i in range(len(x) // 64)
    ] * 5


@pytest.mark.parametrize(
    "optimizer, lr, momentum, weight_decay",
    [
        ("sgd", 0.05, 0.9, 0.0),
        ("momentum", 0.01, 0.9, 0.0),
        ("nesterov", 0.01, 0.9, 0.0),
        ("rmsprop", 1e-4, 0.9, 0.0),
        ("adam", 1e-3, 0.9, 0.0),
        ("adamw", 1e-3, 0.9, 1e-2),
        # Options away from their defaults, so each one's value (not only its default) is checked.
        ("sgd", 0.05, 0.9, 5e-2),
        ("momentum", 0.02, 0.5, 0.0),
        ("nesterov", 0.01, 0.7, 1e-2),
        ("adam", 1e-3, 0.9, 5e-2),
    ],
)
def test_losses_and_parameters_agree_step_by_step(batches, optimizer, lr, momentum, weight_decay):
    from jaxmlp.data.datasets import Dataset

    x0, y0 = batches[0]
    ds = Dataset("padded-digits", x0, y0, x0, y0, (28, 28), 10, 0.0)
    options = dict(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, batch_size=64)
    config = TrainConfig(**options).validate()
    program, state = init(config, ds)
    model = MLP()
    load_flax_params(model, state.params)

    step = jax.jit(lambda s, x, y: train_step(program, s, x, y))
    ours = []
    for x, y in batches[:STEPS]:
        state, stats = step(state, x, y)
        ours.append(float(stats["loss"]))
    theirs = train_steps(model, optimizer, lr, batches[:STEPS], momentum, weight_decay)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert ours[-1] < ours[0]  # and it is training, not agreeing on a constant
    linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    ours_kernels, ours_biases = linear_kernels(state.params), linear_biases(state.params)
    for linear, name in zip(linears, ours_kernels, strict=True):
        np.testing.assert_allclose(ours_kernels[name], linear.weight.detach().numpy().T, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours_biases[name], linear.bias.detach().numpy(), rtol=1e-4, atol=1e-5)
