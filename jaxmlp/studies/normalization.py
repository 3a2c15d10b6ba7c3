"""`jaxmlp study normalization`: no normalization vs batch norm vs layer norm.

Two views: how the values entering each activation function (pre-activations)
drift during training, and which learning rates each variant survives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from jaxmlp import plots
from jaxmlp.config import TrainConfig
from jaxmlp.data import Dataset
from jaxmlp.model import NORMS
from jaxmlp.studies.common import (
    StudyOptions,
    fit_quietly,
    log,
    markdown_table,
    output_dir,
    study_data,
    to_jsonable,
    write_report,
)
from jaxmlp.train import TrainState, init

PERCENTILES = (5, 25, 50, 75, 95)
COLORS = {"none": "#7f7f7f", "batch": "#1f77b4", "layer": "#2ca02c"}


def preactivation_hook(config: TrainConfig, ds: Dataset, probe_size: int = 1024):
    """An `epoch_hook` recording percentiles of each hidden layer's pre-activations on a fixed probe batch."""
    program, _ = init(config, ds)
    x = jnp.asarray(ds.x_train[:probe_size])

    @jax.jit
    def percentiles(params, batch_stats):
        model = nnx.merge(program.graphdef, params, batch_stats, copy=True)
        _, pre = model.forward(x, train=True)  # what the activations see during training (batch statistics for BN)
        return jnp.stack([jnp.percentile(p, jnp.array(PERCENTILES)) for p in pre])

    def hook(state: TrainState) -> dict:
        return {"preactivation_percentiles": np.asarray(percentiles(state.params, state.batch_stats)).tolist()}

    return hook


def _preactivation_figure(runs: dict, n_layers: int):
    with plots.style():
        fig, axes = plt.subplots(
            n_layers, len(runs), figsize=(5 * len(runs), 3.2 * n_layers), squeeze=False, sharex=True
        )
        for col, (norm, out) in enumerate(runs.items()):
            epochs = np.array([r["epoch"] for r in out.metrics])
            q = np.array([r["preactivation_percentiles"] for r in out.metrics])  # (epochs, layers, 5)
            for layer in range(n_layers):
                ax = axes[layer, col]
                c = COLORS[norm]
                ax.fill_between(epochs, q[:, layer, 0], q[:, layer, 4], color=c, alpha=0.15, lw=0, label="5–95%")
                ax.fill_between(epochs, q[:, layer, 1], q[:, layer, 3], color=c, alpha=0.35, lw=0, label="25–75%")
                ax.plot(epochs, q[:, layer, 2], color=c, label="median")
                ax.set(title=f"norm={norm}, hidden layer {layer + 1}", ylabel="pre-activation value")
                if layer == n_layers - 1:
                    ax.set_xlabel("epoch")
                ax.legend(fontsize=7, loc="upper left")
        fig.suptitle("distribution of the values entering each activation (fixed probe batch)", fontweight="bold")
        fig.tight_layout()
    return fig


def _lr_figure(sweep: dict, lrs: list[float]):
    cmap = plt.get_cmap("viridis")
    with plots.style():
        fig, axes = plt.subplots(1, len(sweep) + 1, figsize=(4.5 * (len(sweep) + 1), 4))
        for ax, (norm, outs) in zip(axes, sweep.items()):
            for i, (lr, out) in enumerate(zip(lrs, outs)):
                color = cmap(i / max(len(lrs) - 1, 1))
                if out is None:
                    ax.plot([], [], color=color, ls=":", label=f"lr {lr:g}: diverged")
                    continue
                loss = out.steps["loss"]
                ax.plot(
                    np.arange(1, len(loss) + 1),
                    plots.smooth(loss, max(1, len(loss) // 50)),
                    color=color,
                    label=f"lr {lr:g}",
                )
            ax.set(yscale="log", xlabel="optimizer step", ylabel="training loss (smoothed)", title=f"norm={norm}")
            ax.legend(fontsize=7)
        summary = axes[-1]
        for norm, outs in sweep.items():
            final = [out.metrics[-1]["train_loss"] if out is not None else np.nan for out in outs]
            summary.plot(lrs, final, color=COLORS[norm], marker="o", label=norm)
            diverged = [lr for lr, out in zip(lrs, outs) if out is None]
            # x in data coordinates, y in axes coordinates: the crosses sit along the top edge.
            summary.plot(
                diverged,
                [0.95] * len(diverged),
                "x",
                color=COLORS[norm],
                ms=10,
                mew=2,
                transform=summary.get_xaxis_transform(),
            )
        summary.set(
            xscale="log",
            yscale="log",
            xlabel="learning rate (SGD)",
            ylabel="final training loss",
            title="which learning rates work (x: diverged)",
        )
        summary.legend()
        fig.tight_layout()
    return fig


def _sections(ds, hidden, epochs: int, rows: list) -> list[tuple[str, str]]:
    return [
        (
            "Setup",
            f"Dataset **{ds.name}** ({len(ds.y_train)} training images), MLP with hidden layers {hidden}, "
            f"plain SGD (batch 64, {epochs} epochs), normalization after each hidden Linear and before ReLU.",
        ),
        (
            "What the normalizations compute",
            r"""For a pre-activation $z$ (one hidden layer, a batch of $B$ rows):

- **Batch norm**: each *feature* is standardized over the batch,
  $\hat z_{bj} = (z_{bj} - \mu_j)/\sqrt{\sigma_j^2 + \epsilon}$ with $\mu_j, \sigma_j^2$ the batch mean and
  (biased) variance, then $\gamma_j \hat z_{bj} + \beta_j$. At eval time running averages replace the batch statistics.
- **Layer norm**: each *sample* is standardized over its features,
  $\hat z_{bj} = (z_{bj} - \mu_b)/\sqrt{\sigma_b^2 + \epsilon}$; no batch dependence, same in training and eval.

Either way the next layer sees inputs of a controlled scale however the weights before it grow or shrink, which is
why larger learning rates stay stable.""",
        ),
        (
            "Pre-activations during training",
            "![pre](preactivations.png)\n\nWithout normalization the spread of "
            "the pre-activations is whatever the weights make it and drifts as they "
            "train; batch norm pins every feature near mean 0, variance 1 (then lets "
            "γ, β move it), layer norm does the same per sample.",
        ),
        (
            "Learning-rate sweep",
            "![sweep](lr_sweep.png)\n\n" + markdown_table(["norm", "lr", "final train loss", "test accuracy"], rows),
        ),
    ]


def run(options: StudyOptions) -> str:
    out = output_dir("normalization", options)
    ds = study_data(options)
    epochs = options.epochs or (2 if options.quick else 10)
    hidden = (32, 32) if options.quick else (256, 256)
    lrs = [0.1, 1.0] if options.quick else [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    runs, sweep, rows = {}, {}, []
    for norm in NORMS:
        config = TrainConfig(norm=norm, hidden=hidden, epochs=epochs, optimizer="sgd", lr=0.1).validate()
        runs[norm] = fit_quietly(config, ds, epoch_hook=preactivation_hook(config, ds))
        sweep[norm] = []
        for lr in lrs:
            result = fit_quietly(TrainConfig(norm=norm, hidden=hidden, epochs=epochs, optimizer="sgd", lr=lr), ds)
            sweep[norm].append(result)
            rows.append(
                [
                    norm,
                    lr,
                    "diverged" if result is None else result.metrics[-1]["train_loss"],
                    "—" if result is None else result.metrics[-1]["test_accuracy"],
                ]
            )
            log(
                f"norm {norm:5s} lr {lr:<5g}: "
                + ("diverged" if result is None else f"test accuracy {result.metrics[-1]['test_accuracy']:.4f}")
            )
    figures = {"preactivations.png": _preactivation_figure(runs, len(hidden)), "lr_sweep.png": _lr_figure(sweep, lrs)}
    results = {
        "dataset": ds.name,
        "epochs": epochs,
        "hidden": hidden,
        "lrs": lrs,
        "preactivations": {n: [r["preactivation_percentiles"] for r in o.metrics] for n, o in runs.items()},
        "sweep": rows,
    }
    sections = _sections(ds, hidden, epochs, rows)
    return write_report(out, "Normalization: why it helps", sections, figures, to_jsonable(results))
