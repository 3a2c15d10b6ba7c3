"""The data behind each figure, checked on synthetic inputs; and that files are written and not trivial."""

import re

import matplotlib.image as mpimg
import numpy as np

from jaxmlp import plots


def test_confusion_figure_shows_counts_and_row_normalized():
    counts = np.array([[5, 1], [2, 7]])
    fig = plots.confusion_matrices(counts)
    left, right = fig.axes[0], fig.axes[1]  # the colorbars come after
    np.testing.assert_array_equal(left.images[0].get_array(), counts)
    np.testing.assert_allclose(right.images[0].get_array().sum(1), 1.0)
    assert [t.get_text() for t in left.texts] == ["5", "1", "2", "7"]


def test_gallery_shows_only_misclassified_most_confident_first():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 100)
    preds = labels.copy()
    wrong = rng.choice(100, 13, replace=False)
    preds[wrong] = (labels[wrong] + 1) % 10
    conf = rng.random(100)
    fig = plots.misclassified_gallery(rng.random((100, 64)), (8, 8), labels, preds, conf)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 13
    shown = [tuple(map(int, re.findall(r"pred (\d+).*true (\d+)", t, re.S)[0])) for t in titles]
    assert all(p != t for p, t in shown)
    confidences = [float(re.search(r"\((\d+)%\)", t).group(1)) for t in titles]
    assert confidences == sorted(confidences, reverse=True)


def test_learning_curves_and_layer_dynamics_plot_the_given_numbers(tmp_path):
    metrics = [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "train_accuracy": 1 - 1 / (e + 1),
            "test_loss": 1.2 / e,
            "test_accuracy": 0.9 - 1 / (e + 2),
        }
        for e in range(1, 6)
    ]
    fig = plots.learning_curves(metrics, np.linspace(2, 0.1, 50))
    loss_ax = fig.axes[0]
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), [r["test_loss"] for r in metrics])
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_legend() is not None
    path = plots.save(fig, str(tmp_path / "curves.png"))
    img = mpimg.imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 600 and img.std() > 0.01  # not blank

    steps = np.array([0, 10, 20])
    gn = np.array([[1.0, 2.0], [0.5, 1.0], [0.2, 0.4]])
    fig = plots.layer_dynamics(steps, gn, gn / 100, ["hidden.0", "head"])
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), gn[:, 1])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["hidden.0", "head"]


def test_first_layer_weights_one_image_per_unit():
    kernel = np.random.default_rng(0).standard_normal((64, 20))
    fig = plots.first_layer_weights(kernel, (8, 8))
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(shown) == 20
    np.testing.assert_allclose(shown[3], kernel[:, 3].reshape(8, 8))


def test_smooth_is_a_moving_average():
    np.testing.assert_allclose(plots.smooth(np.array([1.0, 3, 5, 7]), 2), [1, 2, 4, 6])
