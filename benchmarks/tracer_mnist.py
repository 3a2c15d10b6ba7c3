"""The user's 784-128-64-10 MLP trained with tracer (tracer.nn + tracer.optim.Adam), end to end.

    python -m benchmarks.tracer_mnist --data-dir data/mnist-mini
    python -m benchmarks.tracer_mnist --quick          # digits, 3 epochs (CI)

Writes tracer_mnist.{json,md,png}: test accuracy and seconds per epoch.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import arguments, base_parser, command_line, machine, output_dir, write_outputs


def train(ds, epochs: int, batch: int = 64, seed: int = 0) -> list[dict]:
    import tracer
    import tracer.nn as nn
    from tracer import optim

    tracer.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(ds.num_features, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, ds.num_classes)
    )
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    rows = []
    for epoch in range(epochs):
        t = time.perf_counter()
        model.train()
        order = rng.permutation(len(ds.y_train))
        losses = []
        for i in range(len(order) // batch):
            idx = order[i * batch : (i + 1) * batch]
            loss = loss_fn(model(tracer.Tensor(ds.x_train[idx])), ds.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with tracer.no_grad():
            predictions = model(tracer.Tensor(ds.x_test)).data.argmax(1)
        rows.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "test_accuracy": float(np.mean(predictions == ds.y_test)),
                "seconds": time.perf_counter() - t,
            }
        )
        print(
            f"epoch {epoch + 1}: train loss {rows[-1]['train_loss']:.4f}, test accuracy "
            f"{rows[-1]['test_accuracy']:.4f} ({rows[-1]['seconds']:.2f}s)",
            flush=True,
        )
    return rows


def figure(rows: list[dict], dataset: str):
    import matplotlib.pyplot as plt

    from jaxmlp.show import plots

    epochs = [r["epoch"] for r in rows]
    with plots.style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        left.plot(epochs, [r["train_loss"] for r in rows], marker="o", color=plots.COLORS["train"])
        left.set(
            xlabel="epoch", ylabel="training loss (mean over the epoch)", yscale="log", title="tracer: training loss"
        )
        right.plot(epochs, [r["test_accuracy"] for r in rows], marker="o", color=plots.COLORS["test"])
        right.set(xlabel="epoch", ylabel="test accuracy", title=f"tracer: test accuracy on {dataset}")
        fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = base_parser("tracer_mnist", __doc__)
    p.add_argument("--data-dir", help="folder of MNIST IDX files (default: the bundled digits)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of Adam at batch 64 (default 10, quick 3)")
    args = p.parse_args(argv)
    from jaxmlp.data.datasets import load_dataset

    ds = load_dataset("digits" if not args.data_dir else None, args.data_dir, "standardize")
    epochs = args.epochs or (3 if args.quick else 10)
    rows = train(ds, epochs)
    results = {"machine": machine(), "command": command_line("tracer_mnist", argv), "dataset": ds.name, "rows": rows}
    table = "| epoch | train loss | test accuracy | seconds |\n|---|---|---|---|\n" + "\n".join(
        f"| {r['epoch']} | {r['train_loss']:.4f} | {r['test_accuracy']:.4f} | {r['seconds']:.2f} |" for r in rows
    )
    fig = figure(rows, ds.name)
    for path in write_outputs(output_dir(args, "tracer_mnist"), "tracer_mnist", results, table, fig):
        print(path)


if __name__ == "__main__":
    main()
