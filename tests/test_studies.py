"""Studies in --quick mode: files written and not trivial, and the data behind the figures makes sense."""

import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pytest

from jaxmlp.show.studies import landscapes
from jaxmlp.show.studies.common import StudyOptions
from tests.helpers import jaxmlp

QUADRATIC = "ill-conditioned quadratic"


def textbook_path(optimizer, lr, steps):
    """Each optimizer's update rule written out in float64 NumPy, from the quadratic's start: its function is
    0.5·(x² + 50·y²), so its gradient is (x, 50·y)."""
    p = np.array(landscapes.SURFACES[QUADRATIC][1], np.float64)
    m, v, path = np.zeros(2), np.zeros(2), [p]
    for t in range(1, steps + 1):
        g = np.array([1.0, 50.0]) * p
        if optimizer == "sgd":
            p = p - lr * g
        elif optimizer == "momentum":  # heavy ball, as PyTorch's SGD(momentum=0.9): m = g + 0.9·m
            m = g + 0.9 * m
            p = p - lr * m
        else:  # Adam, β = (0.9, 0.999), ε = 1e-8
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
            p = p - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        path.append(p)
    return np.array(path)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_each_trajectory_follows_its_optimizers_update_rule_at_its_own_learning_rate(optimizer):
    lrs = np.array([1e-3, 1e-2, 3e-2], np.float32)  # at 3e-2, 50·lr = 1.5: SGD's y overshoots and changes sign
    paths = np.asarray(landscapes.trajectories(lrs, QUADRATIC, optimizer, 25))
    assert paths.shape == (len(lrs), 26, 2)
    for lr, path in zip(lrs, paths):
        np.testing.assert_allclose(path, textbook_path(optimizer, float(lr), 25), rtol=1e-4, atol=1e-6)


def test_steps_to_tolerance_is_the_step_from_which_the_path_stays_inside():
    near, far = [0.0, 1e-4], [0.0, 1.0]  # the quadratic's minimum is (0, 0); tolerance 1e-3
    assert landscapes.steps_to_tolerance(np.array([far, near, far, near, near]), QUADRATIC, 1e-3) == 3
    assert landscapes.steps_to_tolerance(np.array([near, near]), QUADRATIC, 1e-3) == 0
    assert landscapes.steps_to_tolerance(np.array([far, near, far]), QUADRATIC, 1e-3) is None  # left again at the end
    assert landscapes.steps_to_tolerance(np.array([far, far]), QUADRATIC, 1e-3) is None


def test_adam_and_momentum_beat_sgd_on_the_ill_conditioned_quadratic():
    steps = {opt: landscapes.tune("ill-conditioned quadratic", opt, tol=1e-3)[2] for opt in ("sgd", "momentum", "adam")}
    assert all(s is not None for s in steps.values()), steps
    assert steps["momentum"] < steps["sgd"] and steps["adam"] < steps["sgd"], steps


def _check_outputs(out, figures):
    assert os.path.getsize(out / "report.md") > 500
    report = (out / "report.md").read_text()
    for fig in figures:
        assert os.path.getsize(out / fig) > 20_000, fig
        assert f"]({fig})" in report
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_optimizer_study_quick(tmp_path, capsys):
    from jaxmlp.show.studies import optimizers
    from jaxmlp.show.studies.intervals import INTERVAL, cell

    optimizers.run(StudyOptions(quick=True, out=str(tmp_path)))
    printed = capsys.readouterr()
    results = _check_outputs(tmp_path, ["optimizer_curves.png", "optimizer_paths.png", "adam_step_sizes.png"])
    assert set(results["optimizers"]) == {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"}
    report = (tmp_path / "report.md").read_text()
    for r in results["optimizers"].values():
        assert len(r["test_accuracy"]) >= 3 and min(r["test_accuracy"]) > 0.3
        shown = f"test accuracy {cell(r['test_accuracy'])} ({INTERVAL}"  # the terminal's number is the report's
        assert shown in printed.out + printed.err and cell(r["test_accuracy"]) in report
    p = results["adam_effective_lr_percentiles"]
    assert p["p5"] < p["p50"] < p["p95"]  # a spread of per-parameter step sizes, unlike SGD's single one
    # A smoke test says so, and claims no tuning it did not do.
    report = (tmp_path / "report.md").read_text()
    assert "smoke test" in report.lower() and "ranking means nothing" in report
    for claim in ("tuned lr", "best lr", "tuned learning rate", "chosen by the lowest validation loss"):
        assert claim not in report.lower(), claim
    assert results["mode"] == "smoke test" and not any(r["tuned"] for r in results["optimizers"].values())


@pytest.mark.slow
def test_dropout_study_quick(tmp_path):
    r = jaxmlp("study", "dropout", "--quick", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    results = _check_outputs(tmp_path, ["dropout_gap.png", "dropout_ensemble.png"])
    assert set(results["runs"]) == {"0.0", "0.2", "0.5"}
    for per_seed in results["runs"].values():  # one list of epoch rows per seed
        assert all(0 <= row["train_eval_accuracy"] <= 1 for rows in per_seed for row in rows)
    for per_seed in results["ensemble"].values():
        for e in per_seed:
            assert len(e["k_accuracy"]) == 64 and all(0 < a <= 1 for a in e["k_accuracy"])
    # Dropout must drop: in train mode (masks on) the loss is higher with p=0.5 than without, every epoch and seed,
    # while eval mode (masks off) sees the whole network. A dropout that keeps every unit fails here.
    runs = results["runs"]
    train_loss = {p: [[row["train_loss"] for row in rows] for rows in per_seed] for p, per_seed in runs.items()}
    for dropped, kept in zip(train_loss["0.5"], train_loss["0.0"], strict=True):
        assert all(a > b for a, b in zip(dropped, kept, strict=True)), train_loss


@pytest.mark.slow
def test_normalization_study_quick(tmp_path):
    r = jaxmlp("study", "normalization", "--quick", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    results = _check_outputs(tmp_path, ["preactivations.png", "lr_sweep.png"])
    for per_epoch in results["preactivations"].values():
        q = np.array(per_epoch)
        assert q.shape[1:] == (2, 5) and (np.diff(q, axis=-1) >= 0).all()  # percentiles in order
    batch = np.array(results["preactivations"]["batch"])
    assert np.abs(batch[0, :, 2]).max() < 1.0  # batch norm centers what the activations see
    again = jaxmlp("study", "normalization", "--quick", "--out", tmp_path)
    assert again.returncode == 2 and "already holds a study report" in again.stderr


def test_explain_autograd(tmp_path):
    r = jaxmlp("explain", "autograd", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    for needle in (
        "loss.grad_fn = <NllLossBackward0",
        "AddmmBackward0",
        "fills 0.weight.grad",
        "Trying to backward through the graph a second time",
        "{ lambda",
        "max |difference|",
        "(residuals), into a linear jaxpr",  # JAX without jit: concrete primals, a per-call linear jaxpr
    ):
        assert needle in r.stdout, needle
    assert "keeps no graph" not in r.stdout and "traces the function into a" not in r.stdout
    assert "digraph" in (tmp_path / "mlp_graph.dot").read_text()
    assert len(r.stdout.splitlines()) < 200  # focused jaxprs (one layer's), not the whole MLP's, raw
    assert "if you need to access saved tensors after calling backward." in r.stdout  # messages never cut short
    assert plt.imread(tmp_path / "mlp_graph.png").std() > 0.01  # drawn with matplotlib: no Graphviz needed
