"""The data behind each figure, checked on synthetic inputs; `ax=` composition; files written and not trivial."""

import os
import re
import subprocess
import sys

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from jaxmlp.show import plots

METRICS = [
    {
        "epoch": e,
        "train_loss": 1 / e,
        "train_accuracy": 1 - 1 / (e + 1),
        "test_loss": 1.2 / e + 0.1 * (e - 3) ** 2,  # lowest at epoch 3
        "test_accuracy": 0.9 - 1 / (e + 2),
    }
    for e in range(1, 6)
]


def test_plots_imports_without_jax_or_orbax_and_leaves_the_backend_alone():
    code = (
        "import matplotlib, sys; before = matplotlib.rcParams._get_backend_or_none(); import jaxmlp.show.plots; "
        "assert 'jax' not in sys.modules and 'orbax' not in sys.modules, 'jax imported'; "
        "assert matplotlib.rcParams._get_backend_or_none() == before, 'backend chosen'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_jaxmlp_command_picks_agg_itself():
    code = (
        "import matplotlib; from jaxmlp.cli import main; main(['recipes']); "
        "assert (matplotlib.rcParams._get_backend_or_none() or '').lower() == 'agg', 'no backend chosen'"
    )
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


HELPERS = {
    "epoch_curves": lambda ax: plots.epoch_curves(METRICS, ax=ax),
    "step_loss": lambda ax: plots.step_loss(np.linspace(2, 0.1, 50), ax=ax),
    "confusion_matrix": lambda ax: plots.confusion_matrix(np.eye(3, dtype=int), ax=ax),
    "image_grid": lambda ax: plots.image_grid(np.zeros((3, 16)), (4, 4), ax=ax),
    "misclassified": lambda ax: plots.misclassified(
        np.zeros((3, 4)), (2, 2), np.array([0, 1, 2]), np.array([1, 1, 0]), np.ones(3), ax=ax
    ),
    "first_layer_weights": lambda ax: plots.first_layer_weights(np.ones((4, 3)), (2, 2), ax=ax),
    "per_layer": lambda ax: plots.per_layer(np.arange(3), np.ones((3, 2)), ["a", "b"], "y", ax=ax),
    "backward_graph": lambda ax: plots.backward_graph(_tiny_graph()[0].grad_fn, ax=ax),
}


def _tiny_graph():
    import tracer

    w = tracer.tensor([1.0, 2.0], requires_grad=True)
    return (w * w).sum() + w.sum(), w


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_every_helper_draws_on_the_given_axes_and_returns_it(name):
    fig, axes = plt.subplots(1, 2)
    assert HELPERS[name](axes[1]) is axes[1]
    assert plt.get_fignums() == [fig.number]  # no figure of its own
    assert axes[1].has_data() or axes[1].texts  # lines and images, or boxes
    assert not axes[0].has_data() and not axes[0].texts
    plt.close("all")
    own = HELPERS[name](None)  # and with no ax, one new figure
    assert len(plt.get_fignums()) == 1 and own.figure.number == plt.get_fignums()[0]
    plt.close("all")


def test_every_public_helper_takes_ax():
    import inspect

    drawing = [f for name, f in vars(plots).items() if inspect.isfunction(f) and f.__module__ == plots.__name__]
    takes_ax = {f.__name__ for f in drawing if "ax" in inspect.signature(f).parameters}
    assert takes_ax == set(HELPERS)


def test_confusion_matrix_shows_counts_or_row_normalized():
    counts = np.array([[5, 1], [2, 7]])
    ax = plots.confusion_matrix(counts)
    np.testing.assert_array_equal(ax.images[0].get_array(), counts)
    assert [t.get_text() for t in ax.texts] == ["5", "1", "2", "7"]
    ax = plots.confusion_matrix(counts, normalize=True)
    np.testing.assert_allclose(ax.images[0].get_array().sum(1), 1.0)
    assert [t.get_text() for t in ax.texts] == ["0.83", "0.17", "0.22", "0.78"]
    plt.close("all")


def test_misclassified_shows_only_mistakes_most_confident_first():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 100)
    preds = labels.copy()
    wrong = rng.choice(100, 13, replace=False)
    preds[wrong] = (labels[wrong] + 1) % 10
    conf = rng.random(100)
    ax = plots.misclassified(rng.random((100, 64)), (8, 8), labels, preds, conf)
    titles = [text.get_text() for text in ax.texts]
    assert len(titles) == len(ax.images) == 13
    shown = [tuple(map(int, re.findall(r"pred (\d+).*true (\d+)", t, re.S)[0])) for t in titles]
    assert all(p != t for p, t in shown)
    confidences = [float(re.search(r"\((\d+)%\)", t).group(1)) for t in titles]
    assert confidences == sorted(confidences, reverse=True)
    plt.close("all")


def test_epoch_curves_plot_the_given_numbers_and_mark_the_best_epoch():
    ax = plots.epoch_curves(METRICS, "loss")
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [r["test_loss"] for r in METRICS])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    best = ax.lines[2]
    assert list(best.get_xdata()) == [3, 3] and "epoch 3" in best.get_label()
    assert plots.best_epoch(METRICS, "accuracy") == ("test", 5)
    assert plots.best_epoch([{"epoch": 1, "train_loss": 1.0}]) is None
    plt.close("all")


def test_first_layer_weights_one_image_per_unit_on_a_symmetric_scale():
    kernel = np.random.default_rng(0).standard_normal((64, 20))
    ax = plots.first_layer_weights(kernel, (8, 8))
    shown = ax.images
    assert len(shown) == 20
    ax.figure.canvas.draw()
    first, below = shown[0].get_window_extent(), shown[8].get_window_extent()  # 8 to a row
    assert below.y1 < first.y0 and below.x0 == pytest.approx(first.x0)  # the second row under the first
    left, right, bottom, top = shown[3].get_extent()
    assert left < right and top < bottom  # the y axis points down: row 0 of the array at the top, as in imshow
    np.testing.assert_allclose(shown[3].get_array(), kernel[:, 3].reshape(8, 8))
    low, high = shown[3].get_clim()
    assert low == -high == -np.abs(kernel[:, 3]).max()
    plt.close("all")


def test_save_writes_a_png_that_is_not_blank(tmp_path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    plots.epoch_curves(METRICS, "loss", ax=axes[0])
    plots.per_layer(np.arange(3), np.array([[1.0, 2.0], [0.5, 1.0], [0.2, 0.4]]), ["hidden.0", "head"], "‖∇W‖", axes[1])
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["hidden.0", "head"]
    img = mpimg.imread(plots.save(fig, str(tmp_path / "curves.png")))
    assert img.shape[0] > 200 and img.shape[1] > 600 and img.std() > 0.01
    assert not plt.get_fignums()  # save closes the figure


def test_smooth_is_a_moving_average():
    np.testing.assert_allclose(plots.smooth(np.array([1.0, 3, 5, 7]), 2), [1, 2, 4, 6])


def _overlaps(a, b, tolerance: float = 1.0) -> bool:
    """Whether two display boxes share more than a `tolerance`-pixel sliver (boxes that touch do not overlap)."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance and min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance


@pytest.mark.parametrize("mistakes", [3, 11, 48])
def test_misclassified_titles_never_cover_an_image_or_each_other(mistakes):
    """The run's gallery of 8x8 digits: every title's text box clear of every image and every other title."""
    from jaxmlp.show.figures import misclassified_figure

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 60)
    predictions = np.where(np.arange(60) < mistakes, (labels + 1) % 10, labels)
    fig = misclassified_figure(rng.random((60, 64)), (8, 8), labels, predictions, rng.random(60))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    assert len(ax.images) == len(ax.texts) == mistakes
    images = [image.get_window_extent(renderer) for image in ax.images]
    texts = [text.get_window_extent(renderer) for text in ax.texts] + [ax.title.get_window_extent(renderer)]
    for i, text in enumerate(texts):
        assert not any(_overlaps(text, image) for image in images), f"title {i} covers an image"
        assert not any(_overlaps(text, other) for other in texts[i + 1 :]), f"title {i} covers another title"
    plt.close(fig)


def test_update_ratio_panel_plots_only_finite_positive_values():
    """Warm-up from lr 0 makes the first update ratios 0 (log 0 = -inf on the log axis): those are left out."""
    from jaxmlp.show.figures import layer_dynamics_figure

    ratio = np.array([[0.0, 0.0], [1e-4, 2e-4], [1e-3, np.inf], [2e-3, 3e-3]])
    steps = {"layers": np.array(["a", "b"]), "stats_step": np.arange(4), "grad_norm": ratio + 1, "update_ratio": ratio}
    fig = layer_dynamics_figure(steps)
    for ax in fig.axes:
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), float)
            assert np.all(np.isfinite(y) & (y > 0)), (ax.get_title(), y)
    plt.close(fig)


def test_short_runs_get_whole_epoch_ticks_and_a_run_title():
    from jaxmlp.show.figures import learning_curves_figure

    metrics = [
        {"epoch": e, "train_loss": 1 / e, "test_loss": 1.1 / e, "train_accuracy": 0.5, "test_accuracy": 0.4}
        for e in (1, 2, 3)
    ]
    fig = learning_curves_figure(metrics, title="digits, adam lr 0.001")
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks), ticks
    assert fig._suptitle.get_text() == "digits, adam lr 0.001"
    plt.close(fig)


def test_epoch_curves_take_a_learners_lists_by_name_or_as_a_dict():
    train, test = [0.9, 0.5, 0.4], [1.0, 0.7, 0.8]
    for ax in (
        plots.epoch_curves(train_loss=train, test_loss=test),
        plots.epoch_curves({"train_loss": train, "test_loss": test}),
    ):
        np.testing.assert_allclose(ax.lines[0].get_ydata(), train)
        np.testing.assert_allclose(ax.lines[1].get_ydata(), test)
        assert list(ax.lines[0].get_xdata()) == [1, 2, 3]  # epochs counted from 1 when not given
        assert "epoch 2" in ax.lines[2].get_label()  # the best test loss
    ax = plots.epoch_curves(train_accuracy=[0.5, 0.9], epoch=[10, 20], what="accuracy")
    assert list(ax.lines[0].get_xdata()) == [10, 20]
    plt.close("all")


def test_epoch_curves_name_the_valid_keys_instead_of_drawing_nothing():
    with pytest.raises(KeyError, match="unknown name.*trian_loss.*train_loss, train_accuracy"):
        plots.epoch_curves(trian_loss=[1.0, 0.5])
    with pytest.raises(KeyError, match="unknown name.*losses"):
        plots.epoch_curves({"losses": [1.0, 0.5]})
    with pytest.raises(KeyError, match="no train_loss, val_loss, test_loss in the data; it has epoch, trian_loss"):
        plots.epoch_curves([{"epoch": 1, "trian_loss": 1.0}])  # rows with the learner's own key
    with pytest.raises(ValueError, match="differ in length"):
        plots.epoch_curves(train_loss=[1.0, 0.5], test_loss=[1.0])
    with pytest.raises(ValueError, match="choose one of loss, accuracy"):
        plots.epoch_curves(METRICS, "acc")
    assert plt.get_fignums() == []  # no empty figure left behind
    plt.close("all")


def test_class_names_label_fashion_mnist_mistakes_and_confusion_matrix():
    from jaxmlp.data.datasets import class_names

    names = class_names("fashion_mnist")
    assert class_names("mnist") is None and class_names("fashion-mnist") == names and names[9] == "Ankle boot"
    ax = plots.misclassified(
        np.zeros((2, 4)), (2, 2), np.array([9, 0]), np.array([7, 0]), np.ones(2), class_names=names
    )
    assert ax.texts[0].get_text() == "pred Sneaker (100%)\ntrue Ankle boot"
    ax = plots.confusion_matrix(np.eye(10, dtype=int), class_names=names)
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["T-shirt/top", "Trouser"]
    plt.close("all")


def test_backward_graph_names_nodes_as_the_dot_file_does():
    from tracer import viz

    loss, w = _tiny_graph()
    ax = plots.backward_graph(loss.grad_fn, {id(w): "w"})
    labels = sorted(t.get_text() for t in ax.texts if t.get_text())  # the boxes; arrows are empty annotations
    assert labels == sorted(["AddBackward0", "SumBackward0", "SumBackward0", "MulBackward0", "w (2,)"])
    assert 'label="w\n(2,)"' in viz.make_dot(loss, {"w": w})  # the same name and shape in the DOT file
    plt.close("all")
