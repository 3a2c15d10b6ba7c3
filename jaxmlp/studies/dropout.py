"""`jaxmlp study dropout`: the train-test gap for p in {0, 0.2, 0.5}, and dropout as an ensemble.

A network trained with dropout is, implicitly, a huge family of thinned
networks sharing weights. The rescaled network used at test time (weights
times the keep probability — or, with inverted dropout, training activations
divided by it) approximates averaging that family; here we measure both.
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

RATES = (0.0, 0.2, 0.5)
K_MAX = 64
COLORS = {0.0: "#1f77b4", 0.2: "#2ca02c", 0.5: "#d62728"}


def ensemble_accuracy(
    config: TrainConfig, ds: Dataset, state: TrainState, k_max: int = K_MAX, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Test accuracy of averaging the softmax of K sampled dropout networks, K = 1..k_max; and of the rescaled net."""
    program, _ = init(config, ds)
    model = nnx.merge(program.graphdef, state.params, state.batch_stats)
    x, y = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)

    @jax.jit
    def sampled_probs(key):
        return jax.nn.softmax(model(x, train=True, rngs=nnx.Rngs(dropout=key)))

    keys = jax.random.split(jax.random.key(seed), k_max)
    running = jnp.zeros((len(y), ds.num_classes))
    accs = []
    for k in range(k_max):
        running = running + sampled_probs(keys[k])
        accs.append(float(jnp.mean(jnp.argmax(running, -1) == y)))
    rescaled = float(jnp.mean(jnp.argmax(model(x, train=False), -1) == y))
    return np.array(accs), rescaled


def _gap_figure(runs: dict):
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        for p, out in runs.items():
            epochs = [r["epoch"] for r in out.metrics]
            train_acc = np.array([r["train_eval_accuracy"] for r in out.metrics])
            test_acc = np.array([r["test_accuracy"] for r in out.metrics])
            axes[0].plot(epochs, train_acc, color=COLORS[p], ls="--", label=f"p={p}: train")
            axes[0].plot(epochs, test_acc, color=COLORS[p], label=f"p={p}: test")
            axes[1].plot(epochs, train_acc - test_acc, color=COLORS[p], marker="o", ms=3, label=f"p={p}")
        axes[0].set(xlabel="epoch", ylabel="accuracy (eval mode)", title="train vs test accuracy")
        axes[1].set(xlabel="epoch", ylabel="train accuracy − test accuracy", title="generalization gap")
        for ax in axes:
            ax.legend(fontsize=8, ncol=2 if ax is axes[0] else 1)
        fig.tight_layout()
    return fig


def _ensemble_figure(curves: dict):
    with plots.style():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        k = np.arange(1, K_MAX + 1)
        for p, (accs, rescaled) in curves.items():
            ax.plot(k, accs, color=COLORS[p], marker="o", ms=2.5, label=f"p={p}: average of K sampled networks")
            ax.axhline(rescaled, color=COLORS[p], ls="--", label=f"p={p}: single rescaled network")
        ax.set(
            xscale="log",
            xlabel="K, number of sampled dropout masks averaged",
            ylabel="test accuracy",
            title="dropout as an ensemble",
        )
        ax.legend(fontsize=8)
        fig.tight_layout()
    return fig


def _sections(ds, hidden, epochs: int, rows: list, runs: dict, curves: dict) -> list[tuple[str, str]]:
    gap = {p: o.metrics[-1]["train_eval_accuracy"] - o.metrics[-1]["test_accuracy"] for p, o in runs.items()}
    test = {p: o.metrics[-1]["test_accuracy"] for p, o in runs.items()}
    gap_text = (
        f"Measured after {epochs} epochs: the train-test gap is {gap[0.0]:.3f} without dropout, "
        f"{gap[0.2]:.3f} at p=0.2 and {gap[0.5]:.3f} at p=0.5; test accuracy {test[0.0]:.4f}, {test[0.2]:.4f} "
        f"and {test[0.5]:.4f}. Dropout pays off when a network would otherwise memorize its training set "
        "(a large gap without it, as with few images per parameter and many epochs); where the gap is small "
        "to begin with, it has little to fix and mostly slows training."
    )
    ensemble_text = " ".join(
        f"At p={p}: one sampled network scores {a[0]:.4f}, the average of {K_MAX} scores {a[-1]:.4f}, the rescaled "
        f"network {r:.4f}."
        for p, (a, r) in curves.items()
    ) + (
        " A single sampled network is clearly worse; averaging more masks closes the distance to the rescaled "
        "network, which gets (nearly) the ensemble's accuracy in one pass."
    )
    sections = [
        (
            "Setup",
            f"Dataset **{ds.name}** ({len(ds.y_train)} training images), MLP with hidden layers {hidden}, "
            f"Adam 1e-3, batch 64, {epochs} epochs, dropout after every hidden layer. Train accuracy is "
            "measured in eval mode (dropout off), like the test accuracy, so the two are comparable.",
        ),
        (
            "What dropout does",
            r"""In training, each hidden unit is kept with probability $1-p$ and the kept ones are
scaled by $1/(1-p)$ (inverted dropout: $h \mapsto h \cdot m / (1-p)$, $m \sim \mathrm{Bernoulli}(1-p)$), so a unit
cannot rely on any particular other unit being present. At test time nothing is dropped and nothing is scaled: the
expected activation already matches. That single "rescaled" network approximates the average of the exponentially
many thinned networks.""",
        ),
        (
            "Results",
            markdown_table(["p", "train acc", "test acc", "gap", f"ensemble of {K_MAX}", "rescaled net"], rows),
        ),
        ("Train vs test", "![gap](dropout_gap.png)\n\n" + gap_text),
        (
            "The ensemble view",
            "![ensemble](dropout_ensemble.png)\n\nAveraging the softmax of K networks with "
            "independently sampled masks (Monte-Carlo dropout) against the single rescaled network "
            "(dashed). " + ensemble_text,
        ),
    ]
    return sections


def run(options: StudyOptions) -> str:
    out = output_dir("dropout", options)
    ds = study_data(options)
    epochs = options.epochs or (3 if options.quick else 30)
    hidden = (64,) if options.quick else (512, 512)  # wide enough to overfit, so there is a gap to close
    runs, curves, rows = {}, {}, []
    for p in RATES:
        config = TrainConfig(dropout=p, hidden=hidden, epochs=epochs, seed=0).validate()
        runs[p] = fit_quietly(config, ds, eval_train=True)
        last = runs[p].metrics[-1]
        if p > 0:
            curves[p] = ensemble_accuracy(config, ds, runs[p].state)
        rows.append(
            [
                p,
                last["train_eval_accuracy"],
                last["test_accuracy"],
                last["train_eval_accuracy"] - last["test_accuracy"],
                curves[p][0][-1] if p > 0 else "—",
                curves[p][1] if p > 0 else "—",
            ]
        )
        log(f"dropout {p}: train {last['train_eval_accuracy']:.4f} test {last['test_accuracy']:.4f}")
    figures = {"dropout_gap.png": _gap_figure(runs), "dropout_ensemble.png": _ensemble_figure(curves)}
    results = {
        "dataset": ds.name,
        "epochs": epochs,
        "hidden": hidden,
        "runs": {str(p): o.metrics for p, o in runs.items()},
        "ensemble": {str(p): {"k_accuracy": a, "rescaled": r} for p, (a, r) in curves.items()},
    }
    sections = _sections(ds, hidden, epochs, rows, runs, curves)
    return write_report(out, "Dropout: why it helps", sections, figures, to_jsonable(results))
