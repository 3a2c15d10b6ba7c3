"""The user's PyTorch notebook as a script, and a bridge to start it from jaxmlp's exact weights.

    python -m benchmarks.torch_reference --data-dir DIR [--epochs 50]   # the original training run

It is the reference the benchmarks compare against; `tests/test_parity_torch.py` uses the
bridge to show both frameworks compute the same losses step by step, from the same initial
weights on the same batches.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

# Each as jaxmlp's optimizer of the same name builds it (jaxmlp/core/optim.py), from (params, lr, momentum, weight
# decay): weight decay is L2 added to the gradient, except AdamW's, which is decoupled.
OPTIMIZERS = {
    "sgd": lambda p, lr, mu, wd: torch.optim.SGD(p, lr=lr, weight_decay=wd),
    "momentum": lambda p, lr, mu, wd: torch.optim.SGD(p, lr=lr, momentum=mu, weight_decay=wd),
    "nesterov": lambda p, lr, mu, wd: torch.optim.SGD(p, lr=lr, momentum=mu, nesterov=True, weight_decay=wd),
    "rmsprop": lambda p, lr, mu, wd: torch.optim.RMSprop(p, lr=lr, weight_decay=wd),
    "adam": lambda p, lr, mu, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd),
    "adamw": lambda p, lr, mu, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd),
}


class MLP(nn.Module):
    """784-128-64-10 with ReLU: the user's model."""

    def __init__(self, sizes=(784, 128, 64, 10)):
        super().__init__()
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def load_flax_params(model: MLP, params) -> None:
    """Copy jaxmlp's NNX params into the torch model: Flax kernels are (in, out), torch weights (out, in)."""
    from jaxmlp.core.train import linear_biases, linear_kernels

    kernels, biases = linear_kernels(params), linear_biases(params)
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for linear, name in zip(linears, kernels):
            linear.weight.copy_(torch.from_numpy(np.asarray(kernels[name]).T.copy()))
            linear.bias.copy_(torch.from_numpy(np.array(biases[name])))


def train_steps(
    model: MLP, optimizer: str, lr: float, batches, momentum: float = 0.9, weight_decay: float = 0.0
) -> list[float]:
    """Train on the given (x, y) batches; return every step's loss."""
    opt = OPTIMIZERS[optimizer](model.parameters(), lr, momentum, weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for x, y in batches:
        loss = loss_fn(model(torch.from_numpy(np.asarray(x))), torch.from_numpy(np.asarray(y)).long())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def seed_loop(ds, epochs: int, batch_size: int = 64, seed: int = 0):
    """The user's training loop: 784-128-64-10, Adam 1e-3, a shuffling `DataLoader`, the test accuracy after
    every epoch. Yields per epoch: the training loop's seconds (the `for x, y in loader` pass alone) and the test
    accuracy, which `benchmarks/cli_vs_seed.py` times against `jaxmlp train`."""
    torch.manual_seed(seed)
    model = MLP((ds.num_features, 128, 64, ds.num_classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train).long()),
        batch_size=batch_size,
        shuffle=True,
    )
    x_test, y_test = torch.from_numpy(ds.x_test), torch.from_numpy(ds.y_test).long()
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_seconds = time.perf_counter() - t
        model.eval()
        with torch.no_grad():
            acc = (model(x_test).argmax(1) == y_test).float().mean().item()
        yield train_seconds, acc, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder of MNIST IDX files")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    from jaxmlp.data.datasets import load_dataset

    ds = load_dataset(data_dir=args.data_dir, normalization="standardize")
    for epoch, (_, acc, seconds) in enumerate(seed_loop(ds, args.epochs, args.batch_size)):
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f} ({seconds:.2f}s)")


if __name__ == "__main__":
    main()
