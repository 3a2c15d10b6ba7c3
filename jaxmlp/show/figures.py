"""The figures of one run, written to `runs/<name>/figures/` after training or by `jaxmlp plot`.

Each figure is `plt.subplots` plus one `jaxmlp.show.plots` helper per Axes; the first four need nothing
but arrays, so the same calls draw a PyTorch run's lists (docs/notebooks/01_plot_it_yourself.md).
"""

from __future__ import annotations

import math
import os

import matplotlib.pyplot as plt

from jaxmlp.core.parallel import to_host
from jaxmlp.core.train import TrainState, linear_kernels
from jaxmlp.data.datasets import class_names
from jaxmlp.runs.evaluate import Report
from jaxmlp.runs.lifecycle import RunDir
from jaxmlp.show import plots


def learning_curves_figure(metrics: list[dict], step_loss=None, title: str | None = None):
    """Loss and accuracy per epoch, and (when given) the loss of every step, side by side, under `title`."""
    panels = 3 if step_loss is not None and len(step_loss) else 2
    with plots.style():
        fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
        if title:
            fig.suptitle(title)
        plots.epoch_curves(metrics, "loss", ax=axes[0])
        plots.epoch_curves(metrics, "accuracy", ax=axes[1])
        if panels == 3:
            plots.step_loss(step_loss, ax=axes[2])
        fig.tight_layout()
    return fig


def run_title(run: RunDir) -> str:
    """What a run trained: dataset, network, optimizer and learning rate, batch (the learning curves' title)."""
    c = run.config()
    where = c.dataset or os.path.basename(os.path.normpath(c.data_dir or ""))
    schedule = "" if c.schedule == "constant" else f" ({c.schedule})"
    hidden = "-".join(map(str, c.hidden))
    return f"{where}, hidden {hidden}, {c.optimizer} lr {c.lr:g}{schedule}, batch {c.batch_size}"


def confusion_figure(counts, class_names=None):
    """Raw counts beside the row-normalized matrix."""
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
        plots.confusion_matrix(counts, class_names=class_names, ax=axes[0])
        plots.confusion_matrix(counts, normalize=True, class_names=class_names, ax=axes[1])
        fig.tight_layout()
    return fig


def layer_dynamics_figure(steps: dict):
    """Per Linear layer over training: the gradient norm, and how far one update moves the weights (|ΔW|/|W|)."""
    layers = [str(s) for s in steps["layers"]]
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        axes[1].axhline(1e-3, color="gray", ls="--", lw=1, label="1e-3 rule of thumb")
        plots.per_layer(steps["stats_step"], steps["grad_norm"], layers, "‖∇W‖ (probe batch)", ax=axes[0])
        plots.per_layer(steps["stats_step"], steps["update_ratio"], layers, "‖ΔW‖ / ‖W‖", ax=axes[1])
        axes[0].set_title("gradient norm per layer")
        axes[1].set_title("update / parameter ratio per layer")
        fig.tight_layout()
    return fig


def misclassified_figure(images, image_shape, labels, predictions, confidence, max_images=48, class_names=None):
    """The gallery of mistakes (`plots.misclassified`, 8 a row), 1.8 inches a row: room for each image and
    the two lines of its title, however many rows there are."""
    rows = max(1, math.ceil(min(int((predictions != labels).sum()), max_images) / 8))
    draw = lambda ax: plots.misclassified(
        images, image_shape, labels, predictions, confidence, max_images, class_names=class_names, ax=ax
    )
    return single(draw, (11, 1.8 * rows + 0.8))


def single(draw, figsize):
    """A figure of one panel drawn by `draw(ax)`, in the house style."""
    with plots.style():
        fig, ax = plt.subplots(figsize=figsize)
        draw(ax)
    return fig


def write_run_figures(run: RunDir, report: Report, state: TrainState) -> list[str]:
    """Learning curves, confusion matrices, misclassified gallery, first-layer weights, layer dynamics."""
    os.makedirs(run.figures_dir, exist_ok=True)
    path = lambda name: os.path.join(run.figures_dir, name)
    metrics, steps = run.history.read_metrics(), run.history.read_steps()
    r, names = report, class_names(report.dataset)
    first = next(iter(linear_kernels(to_host(state.params)).values()))
    written = [
        plots.save(learning_curves_figure(metrics, steps.get("loss"), run_title(run)), path("learning_curves.png")),
        plots.save(confusion_figure(report.confusion, names), path("confusion_matrix.png")),
        plots.save(
            misclassified_figure(r.images, r.image_shape, r.labels, r.predictions, r.confidence, class_names=names),
            path("misclassified.png"),
        ),
        plots.save(
            single(lambda ax: plots.first_layer_weights(first, r.image_shape, ax=ax), (14, 4.2)),
            path("first_layer_weights.png"),
        ),
    ]
    if len(steps.get("stats_step", [])):
        written.append(plots.save(layer_dynamics_figure(steps), path("layer_dynamics.png")))
    return written
