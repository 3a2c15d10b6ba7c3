"""`jaxmlp study normalization`: no normalization vs batch norm vs layer norm.

Two views: the distribution of the values entering each activation function
(pre-activations) during training, and which learning rates each variant
trains at, over several seeds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from jaxmlp.config import TrainConfig
from jaxmlp.core.train import TrainState, init
from jaxmlp.data.datasets import Dataset
from jaxmlp.names import NORMS
from jaxmlp.show import plots
from jaxmlp.show.studies.common import (
    StudyOptions,
    fit_quietly,
    log,
    markdown_table,
    output_dir,
    study_data,
    to_jsonable,
    write_report,
)
from jaxmlp.show.studies.intervals import INTERVAL, SMOKE_TEST, cell

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


def _final_loss(out) -> float:
    """The final training loss, or NaN for a run that diverged or learned nothing (loss above 0.9·ln 10)."""
    loss = out.metrics[-1]["train_loss"] if out is not None else np.nan
    return loss if loss < 0.9 * np.log(10) else np.nan


def _lr_summary(summary, sweep: dict, lrs: list[float]) -> None:
    """Final training loss against learning rate, one line per normalization; x where every seed failed."""
    for norm, per_lr in sweep.items():
        final = [
            np.nanmean([_final_loss(o) for o in outs]) if any(~np.isnan([_final_loss(o) for o in outs])) else np.nan
            for outs in per_lr
        ]
        summary.plot(lrs, final, color=COLORS[norm], marker="o", label=norm)
        failed = [lr for lr, outs in zip(lrs, per_lr) if all(np.isnan(_final_loss(o)) for o in outs)]
        # x in data coordinates, y in axes coordinates: the crosses sit along the top edge.
        summary.plot(
            failed,
            [0.95] * len(failed),
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
        ylabel="final training loss (mean of seeds that trained)",
        title="which learning rates work (x: all failed)",
    )
    summary.legend()


def _lr_figure(sweep: dict, lrs: list[float]):
    cmap = plt.get_cmap("viridis")
    with plots.style():
        fig, axes = plt.subplots(1, len(sweep) + 1, figsize=(4.5 * (len(sweep) + 1), 4))
        for ax, (norm, per_lr) in zip(axes, sweep.items()):
            for i, (lr, outs) in enumerate(zip(lrs, per_lr)):
                color, out = cmap(i / max(len(lrs) - 1, 1)), outs[0]
                if np.isnan(_final_loss(out)):
                    ax.plot([], [], color=color, ls=":", label=f"lr {lr:g}: failed (seed 0)")
                    continue
                loss = out.steps["loss"]
                ax.plot(
                    np.arange(1, len(loss) + 1),
                    plots.smooth(loss, max(1, len(loss) // 50)),
                    color=color,
                    label=f"lr {lr:g}",
                )
            ax.set(
                yscale="log", xlabel="optimizer step", ylabel="training loss (smoothed)", title=f"norm={norm}, seed 0"
            )
            ax.legend(fontsize=7)
        _lr_summary(axes[-1], sweep, lrs)
        fig.tight_layout()
    return fig


WHAT_THEY_COMPUTE = r"""For a pre-activation $z$ (one hidden layer, a batch of $B$ rows):

- **Batch norm** (Ioffe & Szegedy 2015): each *feature* is standardized over the batch,
  $\hat z_{bj} = (z_{bj} - \mu_j)/\sqrt{\sigma_j^2 + \epsilon}$ with $\mu_j, \sigma_j^2$ the batch mean and (biased)
  variance, then $\gamma_j \hat z_{bj} + \beta_j$. So $\hat z$ has mean 0 and variance 1 per feature: about half of
  its values are negative, and nothing keeps them in [0, 1]. At eval time running averages replace the batch statistics.
- **Layer norm**: each *sample* is standardized over its features,
  $\hat z_{bj} = (z_{bj} - \mu_b)/\sqrt{\sigma_b^2 + \epsilon}$; no batch dependence, same in training and eval.

Why that helps is not settled by "it removes internal covariate shift" (the change of a layer's input distribution as
the layers before it train, Ioffe & Szegedy's motivation). Santurkar et al. (2018) measured that shift as the change
in a layer's gradient caused by updating the layers before it, found batch norm does not reduce it, and proposed
instead that it makes the landscape smoother, measured by the loss variation along a step, the gradient change, and
the effective β-smoothness (the gradient change divided by the distance moved). Notebook 5
(`docs/notebooks/05_normalization.md`) measures those statistics with and without batch norm on this MLP, with their
intervals, and there they do not show batch norm smoother. One mechanism is simple to verify: batch norm makes the
layer before it scale-invariant (weights × 10: same output, gradient ÷ 10, so growing weights shrink their own
effective step); the notebook checks it."""


def run(options: StudyOptions) -> str:
    out = output_dir("normalization", options)
    ds = study_data(options)
    epochs = options.epochs or (2 if options.quick else 10)
    hidden = (32, 32) if options.quick else (256, 256)
    lrs = [0.1, 1.0] if options.quick else [0.03, 0.1, 0.3, 1.0, 3.0]
    seeds = 1 if options.quick else max(options.seeds, 3)  # quick: a smoke test, one seed
    runs, sweep, rows = {}, {}, []
    for norm in NORMS:
        config = TrainConfig(norm=norm, hidden=hidden, epochs=epochs, optimizer="sgd", lr=0.1).validate()
        runs[norm] = fit_quietly(config, ds, epoch_hook=preactivation_hook(config, ds))
        sweep[norm] = []
        for lr in lrs:
            outs = [
                fit_quietly(TrainConfig(norm=norm, hidden=hidden, epochs=epochs, optimizer="sgd", lr=lr, seed=s), ds)
                for s in range(seeds)
            ]
            sweep[norm].append(outs)
            rows.append(_sweep_row(norm, lr, outs))
            log(f"norm {norm:5s} lr {lr:<5g}: {rows[-1][2]} trained, test accuracy {rows[-1][4]} ({INTERVAL})")
    figures = {"preactivations.png": _preactivation_figure(runs, len(hidden)), "lr_sweep.png": _lr_figure(sweep, lrs)}
    results = {
        "dataset": ds.name,
        "epochs": epochs,
        "hidden": hidden,
        "lrs": lrs,
        "seeds": seeds,
        "preactivations": {n: [r["preactivation_percentiles"] for r in o.metrics] for n, o in runs.items()},
        "sweep": rows,
    }
    sections = [("Smoke test", SMOKE_TEST)] * options.quick + _sections(ds, hidden, epochs, seeds, rows)
    return write_report(
        out, "Normalization: what it does, and what it tolerates", sections, figures, to_jsonable(results)
    )


def _sweep_row(norm: str, lr: float, outs: list) -> list:
    """Table row: how many seeds trained, and their final training loss and test accuracy (mean ± 95% interval)."""
    trained = [o for o in outs if not np.isnan(_final_loss(o))]
    return [
        norm,
        lr,
        f"{len(trained)}/{len(outs)}",
        cell([_final_loss(o) for o in trained]) if len(trained) else "—",
        cell([o.metrics[-1]["test_accuracy"] for o in trained]) if len(trained) else "—",
    ]


def _sections(ds, hidden, epochs: int, seeds: int, rows: list) -> list[tuple[str, str]]:
    return [
        (
            "Setup",
            f"Dataset **{ds.name}** ({len(ds.y_train)} training images), MLP with hidden layers {hidden}, "
            f"plain SGD (batch 64, {epochs} epochs), normalization after each hidden Linear and before ReLU. "
            f"The learning-rate sweep runs {seeds} seeds per cell; cells are the mean ± the half-width of the 95% "
            "t-interval over the seeds that trained.",
        ),
        ("What the normalizations compute", WHAT_THEY_COMPUTE),
        (
            "Pre-activations during training",
            "![pre](preactivations.png)\n\nOne seed, percentiles of the values entering each ReLU on a fixed probe "
            "batch. Without normalization their spread is whatever the weights make it and changes as they train; "
            "batch norm centers every feature at 0 with variance 1 over the batch before γ and β move it (so the "
            "values straddle 0: they are not in [0, 1]); layer norm does the same per sample.",
        ),
        (
            "Learning-rate sweep",
            "![sweep](lr_sweep.png)\n\nA run *failed* if its loss turned NaN or ended no better than chance "
            "(above 0.9·ln 10).\n\n"
            + markdown_table(["norm", "lr", "seeds trained", "final train loss", "test accuracy"], rows),
        ),
    ]
