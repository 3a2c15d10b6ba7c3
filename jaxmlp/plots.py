"""Figures as pure functions: plain arrays and dicts in, a matplotlib `Figure` out.

Every function here follows the same recipe, worth copying:

    fig, axes = plt.subplots(...)       # object-oriented: draw on an Axes, never on "the current" plot
    ax.plot(...); ax.set(xlabel=..., ylabel=..., title=...)
    ax.legend()                         # whenever there is more than one line
    return fig                          # the caller decides where it goes: `save(fig, path)`

Nothing here knows about training objects, so each figure can be tested on
synthetic data and reused on any run.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, no window: works on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxmlp.files import write_atomic  # noqa: E402

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
}
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#d62728"}


def style():
    """The one style every figure is drawn in (use as `with style(): ...`)."""
    return plt.style.context(STYLE)


def save(fig, path: str) -> str:
    """Write `fig` as PNG atomically (temp file + rename) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return path


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Moving average of `y` over `window` points (shorter at the start), for noisy per-step curves."""
    if window <= 1 or len(y) == 0:
        return np.asarray(y, float)
    c = np.cumsum(np.insert(np.asarray(y, float), 0, 0.0))
    out = np.empty(len(y))
    out[window - 1 :] = (c[window:] - c[:-window]) / window
    out[: window - 1] = c[1:window] / np.arange(1, window)
    return out


# --- one run ------------------------------------------------------------------------


def learning_curves(metrics: list[dict], step_loss: np.ndarray | None = None):
    """Loss and accuracy per epoch (train vs val/test), and the training loss of every step."""
    epochs = [r["epoch"] for r in metrics]
    splits = [s for s in ("train", "val", "test") if f"{s}_loss" in metrics[0]]
    with style():
        ncols = 3 if step_loss is not None and len(step_loss) else 2
        fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 4))
        for ax, what in zip(axes, ("loss", "accuracy")):
            for s in splits:
                ax.plot(
                    epochs,
                    [r[f"{s}_{what}"] for r in metrics],
                    marker="o",
                    ms=3,
                    color=COLORS[s],
                    label=f"{s}" + (" (running mean, train mode)" if s == "train" else ""),
                )
            ax.set(xlabel="epoch", ylabel=what, title=f"{what} per epoch")
            ax.legend()
        axes[0].set_yscale("log")
        if ncols == 3:
            ax = axes[2]
            steps = np.arange(1, len(step_loss) + 1)
            ax.plot(steps, step_loss, color=COLORS["train"], alpha=0.25, lw=0.8, label="every step")
            ax.plot(
                steps, smooth(step_loss, max(1, len(step_loss) // 100)), color=COLORS["train"], label="moving average"
            )
            ax.set(xlabel="optimizer step", ylabel="training loss", yscale="log", title="loss per step")
            ax.legend()
        fig.tight_layout()
    return fig


def confusion_matrices(counts: np.ndarray, class_names: list[str] | None = None):
    """Side by side: raw counts, and each row divided by its total (the per-class recall on the diagonal)."""
    n = counts.shape[0]
    names = class_names or [str(i) for i in range(n)]
    normalized = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
        for ax, data, title, fmt in ((axes[0], counts, "counts", "d"), (axes[1], normalized, "row-normalized", ".2f")):
            im = ax.imshow(data, cmap="Blues")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            ax.set(
                xticks=range(n),
                yticks=range(n),
                xticklabels=names,
                yticklabels=names,
                xlabel="predicted class",
                ylabel="true class",
                title=f"confusion matrix ({title})",
            )
            ax.grid(False)
            threshold = data.max() / 2
            for i in range(n):
                for j in range(n):
                    ax.text(
                        j,
                        i,
                        format(data[i, j], fmt),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if data[i, j] > threshold else "black",
                    )
        fig.tight_layout()
    return fig


def misclassified_gallery(
    images: np.ndarray,
    image_shape: tuple[int, int],
    labels: np.ndarray,
    predictions: np.ndarray,
    confidence: np.ndarray,
    max_images: int = 48,
):
    """One grid of the test images the model got wrong, most confident mistakes first."""
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-confidence[wrong])][:max_images]
    cols = 8
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    with style():
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.5, rows * 1.75), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, i in zip(axes.flat, wrong):
            ax.imshow(images[i].reshape(image_shape), cmap="gray_r", interpolation="nearest")
            ax.set_title(
                f"pred {predictions[i]} ({confidence[i]:.0%})\ntrue {labels[i]}",
                fontsize=8,
                color="#d62728",
                fontweight="normal",
            )
        fig.suptitle(
            f"misclassified test images: showing {len(wrong)} of {int((predictions != labels).sum())}, "
            "most confident first",
            fontweight="bold",
        )
        fig.tight_layout()
    return fig


def first_layer_weights(kernel: np.ndarray, image_shape: tuple[int, int], max_units: int = 64):
    """Each first-layer unit's incoming weights as an image.

    Shows what pattern of pixels excites the unit (red) or inhibits it (blue).
    """
    units = min(kernel.shape[1], max_units)
    cols = 16 if units > 32 else 8
    rows = int(np.ceil(units / cols))
    with style():
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.6), squeeze=False)
        for u, ax in enumerate(axes.flat):
            ax.axis("off")
            if u < units:
                w = kernel[:, u].reshape(image_shape)
                lim = np.abs(w).max() or 1.0
                ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        fig.suptitle(
            f"first-layer weights of {units} of {kernel.shape[1]} units (red +, blue -, each on its own scale)",
            fontweight="bold",
        )
        fig.tight_layout()
    return fig


def layer_dynamics(stats_step: np.ndarray, grad_norm: np.ndarray, update_ratio: np.ndarray, layers: list[str]):
    """Per Linear layer over training: the gradient norm, and how far one update moves the weights (|Δw|/|w|)."""
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        for k, name in enumerate(layers):
            axes[0].plot(stats_step, grad_norm[:, k], label=name)
            axes[1].plot(stats_step, update_ratio[:, k], label=name)
        axes[0].set(xlabel="optimizer step", ylabel="‖∇W‖ (probe batch)", yscale="log", title="gradient norm per layer")
        axes[1].axhline(1e-3, color="gray", ls="--", lw=1, label="1e-3 rule of thumb")
        axes[1].set(
            xlabel="optimizer step", ylabel="‖ΔW‖ / ‖W‖", yscale="log", title="update / parameter ratio per layer"
        )
        for ax in axes:
            ax.legend()
        fig.tight_layout()
    return fig
