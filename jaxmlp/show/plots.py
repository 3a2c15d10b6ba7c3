"""Plotting helpers as matplotlib recommends writing them: data in, drawn on the Axes you pass, that Axes out.

Every helper follows the same recipe, worth copying:

    def helper(data, ..., ax=None):
        ax = ax if ax is not None else new_axes()     # a figure of its own only when you give none
        ax.plot(...); ax.set(xlabel=..., ylabel=..., title=...)
        return ax                                      # the caller composes, saves or shows it

So one call draws one panel, and a figure of many panels is `fig, axes = plt.subplots(...)` plus one
call per Axes (`jaxmlp/show/figures.py` composes a run's figures that way). Nothing here knows about
training objects, and nothing imports JAX or chooses a backend: these work inline in a notebook, on
arrays from PyTorch or from a `jaxmlp` run folder. Only the `jaxmlp` command picks the Agg backend.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from jaxmlp.files import write_atomic

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


def new_axes(figsize: tuple[float, float] = (6, 4)):
    """One Axes on a new Figure, in the house style: what a helper draws on when given no `ax`."""
    with style():
        return plt.subplots(figsize=figsize)[1]


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


SPLITS = ("train", "val", "test")
CURVES = ("loss", "accuracy")


def epoch_rows(metrics=None, **series) -> list[dict]:
    """Per-epoch rows `{"epoch": 1, "train_loss": ..., ...}` from what a learner has, checked.

    Takes a jaxmlp run's rows (metrics.jsonl), a dict of lists (`{"train_loss": [...], "test_loss": [...]}`),
    or the lists as keywords (`train_loss=[...]`). Lists name their split and curve (`train_loss`,
    `test_accuracy`, ...) and may give `epoch`; otherwise epochs count from 1. A name that is neither is an
    error that lists the names there are, never a silently empty plot.
    """
    if isinstance(metrics, dict):
        series = {**metrics, **series}
    elif metrics is not None:
        if series:
            raise TypeError("epoch_curves: pass either per-epoch rows or lists by name, not both")
        return _checked_rows(list(metrics))
    if not series:
        raise TypeError("epoch_curves: no data; pass rows ([{'epoch': 1, 'train_loss': ...}, ...]) or lists by name")
    valid = ["epoch"] + [f"{split}_{curve}" for split in SPLITS for curve in CURVES]
    unknown = [key for key in series if key not in valid]
    if unknown:
        raise KeyError(f"epoch_curves: unknown name(s) {', '.join(unknown)}; name your lists {', '.join(valid)}")
    lengths = {key: len(values) for key, values in series.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"epoch_curves: the lists differ in length: {lengths}")
    n = next(iter(lengths.values()))
    series.setdefault("epoch", range(1, n + 1))
    return [{key: values[i] for key, values in series.items()} for i in range(n)]


def _checked_rows(rows: list) -> list[dict]:
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise TypeError("epoch_curves: rows must be a non-empty list of dicts, one per epoch (as in metrics.jsonl)")
    if "epoch" not in rows[0]:
        rows = [{"epoch": i, **r} for i, r in enumerate(rows, 1)]
    return rows


def best_epoch(metrics: list[dict], what: str = "loss") -> tuple[str, int] | None:
    """(split, epoch) of the held-out split's best `what`: lowest loss or highest accuracy; val before test."""
    held_out = next((s for s in ("val", "test") if f"{s}_{what}" in metrics[0]), None)
    if held_out is None:
        return None
    values = [r[f"{held_out}_{what}"] for r in metrics]
    i = int(np.argmin(values) if what == "loss" else np.argmax(values))
    return held_out, metrics[i]["epoch"]


# --- one panel each -----------------------------------------------------------------------


def epoch_curves(metrics=None, what: str = "loss", ax=None, **series):
    """`what` (loss or accuracy) per epoch for every split given, the held-out split's best epoch marked.

    `metrics` is what `epoch_rows` takes: one dict per epoch (a jaxmlp run's metrics.jsonl), or a dict of
    lists; or give the lists as keywords, `epoch_curves(train_loss=[...], test_loss=[...])`. Loss goes on a
    log axis, where the last factor of ten (the part that matters late in training) is as visible as the first.
    """
    if what not in CURVES:
        raise ValueError(f"epoch_curves: what={what!r}; choose one of {', '.join(CURVES)}")
    rows = epoch_rows(metrics, **series)
    splits = [split for split in SPLITS if f"{split}_{what}" in rows[0]]
    if not splits:
        wanted = ", ".join(f"{split}_{what}" for split in SPLITS)
        raise KeyError(f"epoch_curves: no {wanted} in the data; it has {', '.join(rows[0])}")
    ax = ax if ax is not None else new_axes()
    epochs = [r["epoch"] for r in rows]
    for split in splits:
        ax.plot(epochs, [r[f"{split}_{what}"] for r in rows], marker="o", ms=3, color=COLORS[split], label=split)
    best = best_epoch(rows, what)
    if best is not None:
        ax.axvline(best[1], color="gray", ls="--", lw=1, label=f"best {best[0]} {what}: epoch {best[1]}")
    ax.set(xlabel="epoch", ylabel=what, title=f"{what} per epoch", yscale="log" if what == "loss" else "linear")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.25 on a short run
    ax.legend()
    return ax


def step_loss(loss: np.ndarray, ax=None):
    """The training loss of every optimizer step (faint) and its moving average, on a log axis."""
    ax = ax if ax is not None else new_axes()
    steps = np.arange(1, len(loss) + 1)
    ax.plot(steps, loss, color=COLORS["train"], alpha=0.25, lw=0.8, label="every step")
    ax.plot(steps, smooth(loss, max(1, len(loss) // 100)), color=COLORS["train"], label="moving average")
    ax.set(xlabel="optimizer step", ylabel="training loss", yscale="log", title="loss per step")
    ax.legend()
    return ax


def confusion_matrix(counts: np.ndarray, normalize: bool = False, class_names: list[str] | None = None, ax=None):
    """counts[true, predicted] as an image with a colorbar and every cell's value written in it.

    `normalize=True` divides each row by its total, so the diagonal is each class's recall and a row
    says what that class is mistaken for, whatever the class sizes.
    """
    ax = ax if ax is not None else new_axes((6.5, 5.5))
    n = counts.shape[0]
    data = counts / np.maximum(counts.sum(1, keepdims=True), 1) if normalize else counts
    names = class_names or [str(i) for i in range(n)]
    im = ax.imshow(data, cmap="Blues", vmin=0)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    title = "confusion matrix (" + ("row-normalized" if normalize else "counts") + ")"
    ax.set(xticks=range(n), yticks=range(n), xticklabels=names, yticklabels=names, title=title)
    if max(map(len, names)) > 2:  # class names, not digits: slanted so that neighbours do not overlap
        ax.tick_params(axis="x", labelrotation=45)
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.grid(False)
    fmt, threshold = (".2f" if normalize else "d"), data.max() / 2
    for (i, j), value in np.ndenumerate(data):
        color = "white" if value > threshold else "black"
        ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=7, color=color)
    return ax


def image_grid(images: np.ndarray, image_shape: tuple[int, int], titles=None, cols: int = 8, ax=None, **imshow):
    """Many small images as a grid inside `ax` (one panel of a larger figure, or a figure alone).

    Each image is one `ax.images` entry, in order, placed by `extent` in pixel units, so every pixel is square
    and every image is at one scale. `imshow` keywords (cmap, vmin, ...) apply to every image; `titles`, one
    per image (`ax.texts`, in order), go above each, in a band left free for them. All in the one Axes, because
    an Axes costs milliseconds to build and draw, and a run's figures hold over a hundred images.
    """
    rows = max(1, int(np.ceil(len(images) / cols)))
    height, width = image_shape
    gap = 0.1 * max(height, width)
    title_band = 0.45 * height if titles is not None else 0.0  # two 7-point lines over images 0.6 in tall or more
    cell_width, cell_height = width + gap, title_band + height + gap
    ax = ax if ax is not None else new_axes((cols * 1.4, rows * 1.6 + 0.4))
    ax.axis("off")
    imshow = {"cmap": "gray_r", "interpolation": "nearest", **imshow}
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        left, top = c * cell_width + gap / 2, r * cell_height + title_band
        ax.imshow(np.asarray(image).reshape(image_shape), extent=(left, left + width, top + height, top), **imshow)
        if titles is not None:
            ax.annotate(
                titles[k],
                (left + width / 2, top),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set(xlim=(0, cols * cell_width), ylim=(rows * cell_height, 0), aspect="equal")
    return ax


def misclassified(
    images, image_shape, labels, predictions, confidence, max_images: int = 48, class_names=None, ax=None
):
    """The test images the model got wrong, most confident mistakes first, titled predicted (confidence) / true.

    All in one figure: one file to open, every mistake at the same scale, and the confident ones, the
    mistakes worth looking at, first. `class_names` labels classes by name (Fashion-MNIST's "Sneaker")
    instead of by number.
    """
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:max_images]
    name = (lambda k: class_names[k]) if class_names is not None else str
    titles = [f"pred {name(predictions[i])} ({confidence[i]:.0%})\ntrue {name(labels[i])}" for i in wrong]
    ax = image_grid(images[wrong], image_shape, titles, ax=ax)
    ax.set_title(f"{len(wrong)} of {int((predictions != labels).sum())} mistakes, most confident first")
    return ax


def first_layer_weights(kernel: np.ndarray, image_shape: tuple[int, int], max_units: int = 64, ax=None):
    """Each first-layer unit's incoming weights (kernel[:, unit]) as an image: red excites, blue inhibits.

    Each image has its own symmetric color scale, so a unit with small weights still shows its pattern.
    """
    units = min(kernel.shape[1], max_units)
    cols = 16 if units > 32 else 8
    ax = ax if ax is not None else new_axes((cols * 0.9, np.ceil(units / cols) * 0.9 + 0.6))
    ax = image_grid(kernel[:, :units].T, image_shape, cols=cols, ax=ax, cmap="RdBu_r")
    for image in ax.images:
        lim = float(np.abs(image.get_array()).max()) or 1.0
        image.set_clim(-lim, lim)
    ax.set_title(f"first-layer weights of {units} of {kernel.shape[1]} units (red +, blue -, each on its own scale)")
    return ax


def per_layer(step: np.ndarray, values: np.ndarray, layers: list[str], ylabel: str, ax=None):
    """One line per layer over training: values[:, k] for layer k (a run's grad_norm or update_ratio), on a log axis.

    Only positive, finite values are drawn: a zero (an update ratio while warm-up holds the learning rate
    at 0) has no place on a log axis, so the line starts where there is something to show."""
    ax = ax if ax is not None else new_axes()
    values = np.asarray(values, float)
    for k, name in enumerate(layers):
        shown = np.isfinite(values[:, k]) & (values[:, k] > 0)
        ax.plot(np.asarray(step)[shown], values[shown, k], label=name)
    ax.set(xlabel="optimizer step", ylabel=ylabel, yscale="log")
    ax.legend()
    return ax


def _graph_rows(root) -> dict:
    """Each node of a backward graph (reached through `next_functions`) and its row: one below its lowest
    parent, so every edge points down (a longest-path layering, in topological order)."""
    parents, stack = {root: 0}, [root]
    while stack:
        for child, _ in stack.pop().next_functions:
            if child is not None:
                if child not in parents:
                    parents[child] = 0
                    stack.append(child)
                parents[child] += 1
    row, ready = {root: 0}, [root]
    while ready:
        node = ready.pop()
        for child, _ in node.next_functions:
            if child is not None:
                row[child] = max(row.get(child, 0), row[node] + 1)
                parents[child] -= 1
                if not parents[child]:
                    ready.append(child)
    return row


def node_label(node, names: dict | None = None) -> str:
    """What a node is called in every view of the graph (this figure, `tracer.viz.make_dot`'s DOT): a leaf's
    AccumulateGrad by its parameter's name and shape (`0.weight (128, 784)`), any other node by its class
    name (`AddmmBackward0`)."""
    kind = node.name().split("::")[-1]  # PyTorch's C++ nodes are named torch::autograd::AccumulateGrad
    if kind != "AccumulateGrad":
        return kind
    variable = node.variable
    name = (names or {}).get(id(variable), "leaf")
    return f"{name} {tuple(variable.shape)}" if variable is not None else f"{name} (freed)"


def backward_graph(root, names: dict | None = None, ax=None):
    """A backward graph (PyTorch's or tracer's, from `loss.grad_fn`) drawn with matplotlib, no Graphviz.

    Boxes in rows, each row ordered by where its parents sit (fewer crossings); arrows go along the edges, the
    way gradients flow; leaves' AccumulateGrad nodes are blue. `names` maps `id(parameter)` to its name.
    """
    row = _graph_rows(root)
    depth = max(row.values())
    ax = ax if ax is not None else new_axes((8, 0.8 * depth + 1.5))
    parents_of = {node: [] for node in row}
    for node in row:
        for child, _ in node.next_functions:
            if child is not None:
                parents_of[child].append(node)
    pos = {}
    for r in range(depth + 1):
        nodes = sorted((n for n in row if row[n] == r), key=lambda n: np.mean([pos[p][0] for p in parents_of[n]] or 0))
        pos.update({n: ((i + 1) / (len(nodes) + 1), -r) for i, n in enumerate(nodes)})
    boxes = {}
    for node, xy in pos.items():
        leaf = node.name().endswith("AccumulateGrad")
        style = dict(boxstyle="round", fc="#a8d8ea" if leaf else "#dddddd", ec="0.5")
        boxes[node] = ax.text(*xy, node_label(node, names), ha="center", va="center", fontsize=8, bbox=style)
    for node in pos:  # after the boxes, so each arrow is clipped to the two boxes it joins
        for child, _ in node.next_functions:
            if child is not None:
                arrow = dict(arrowstyle="->", color="0.4", patchA=boxes[node].get_bbox_patch())
                ax.annotate("", pos[child], pos[node], arrowprops={**arrow, "patchB": boxes[child].get_bbox_patch()})
    ax.set(xlim=(0, 1), ylim=(-depth - 0.5, 0.5))
    ax.axis("off")
    return ax
