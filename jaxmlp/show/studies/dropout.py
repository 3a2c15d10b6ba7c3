"""`jaxmlp study dropout`: the train-test gap for p in {0, 0.2, 0.5} over several seeds, and dropout as an ensemble.

A network trained with dropout is, implicitly, a huge family of thinned
networks sharing weights. The network used at test time (inverted dropout:
training activations divided by the keep probability, nothing dropped at test)
computes the normalized geometric mean of the family's predictions exactly
only when the dropped units feed a single softmax layer; here we measure how
close it comes to Monte-Carlo averaging of sampled masks on a deeper MLP.
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
from jaxmlp.show.studies.intervals import INTERVAL, SMOKE_TEST, cell, mean_interval

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


def _band(ax, x, runs: np.ndarray, **kw):
    m, h = (np.array(a) for a in zip(*(mean_interval(col) for col in runs.T)))
    (line,) = ax.plot(x, m, **kw)
    ax.fill_between(x, m - h, m + h, color=line.get_color(), alpha=0.2, lw=0)


def _gap_figure(runs: dict):
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        for p, outs in runs.items():
            epochs = [r["epoch"] for r in outs[0].metrics]
            train_acc = np.array([[r["train_eval_accuracy"] for r in o.metrics] for o in outs])
            test_acc = np.array([[r["test_accuracy"] for r in o.metrics] for o in outs])
            _band(axes[0], epochs, train_acc, color=COLORS[p], ls="--", label=f"p={p}: train")
            _band(axes[0], epochs, test_acc, color=COLORS[p], label=f"p={p}: test")
            _band(axes[1], epochs, train_acc - test_acc, color=COLORS[p], marker="o", ms=3, label=f"p={p}")
        axes[0].set(xlabel="epoch", ylabel="accuracy (eval mode)", title="train vs test accuracy (95% interval)")
        axes[1].set(xlabel="epoch", ylabel="train accuracy − test accuracy", title="generalization gap (95% interval)")
        for ax in axes:
            ax.legend(fontsize=8, ncol=2 if ax is axes[0] else 1)
        fig.tight_layout()
    return fig


def _ensemble_figure(curves: dict):
    with plots.style():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        k = np.arange(1, K_MAX + 1)
        for p, per_seed in curves.items():
            accs = np.array([a for a, _ in per_seed])
            rescaled = np.array([r for _, r in per_seed])
            _band(ax, k, accs, color=COLORS[p], marker="o", ms=2.5, label=f"p={p}: average of K sampled networks")
            _band(ax, k, np.tile(rescaled[:, None], K_MAX), color=COLORS[p], ls="--", label=f"p={p}: test-time network")
        ax.set(
            xscale="log",
            xlabel="K, number of sampled dropout masks averaged",
            ylabel="test accuracy",
            title="dropout as an ensemble (mean, 95% interval over seeds)",
        )
        ax.legend(fontsize=8)
        fig.tight_layout()
    return fig


WHAT_DROPOUT_DOES = r"""In training, each hidden unit is kept with probability $1-p$ and the kept ones are
scaled by $1/(1-p)$ (inverted dropout: $\tilde h = h \cdot m / (1-p)$, $m \sim \mathrm{Bernoulli}(1-p)$), so a unit
cannot rely on any particular other unit being present. Then $\mathbb E[\tilde h] = h$ and
$\mathrm{Var}[\tilde h] = \frac{p}{1-p} h^2$: at test time nothing is dropped and nothing is scaled.

That test-time network is not the average of the $2^n$ thinned networks. When the dropped units feed a single
softmax layer, it equals their normalized *geometric* mean exactly (the logits are linear in the mask, so averaging
log-probabilities over masks is evaluating at the mean mask; Hinton et al. 2012); with more layers after the dropout
it is an approximation. Below it is compared with Monte-Carlo averaging of K sampled networks (the arithmetic mean of
their softmax outputs), as in Srivastava et al. 2014, section 7.5. Notebook 4 (`docs/notebooks/04_dropout.md`)
derives this and checks it by enumerating every mask of a small network."""


def run(options: StudyOptions) -> str:
    out = output_dir("dropout", options)
    ds = study_data(options)
    epochs = options.epochs or (3 if options.quick else 30)
    hidden = (64,) if options.quick else (512, 512)  # wide enough to overfit, so there is a gap to close
    seeds = 1 if options.quick else max(options.seeds, 3)  # quick: a smoke test, one seed
    runs, curves = {}, {}
    for p in RATES:
        configs = [TrainConfig(dropout=p, hidden=hidden, epochs=epochs, seed=s).validate() for s in range(seeds)]
        runs[p] = [fit_quietly(c, ds, eval_train=True) for c in configs]
        if p > 0:
            curves[p] = [ensemble_accuracy(c, ds, o.state, seed=c.seed) for c, o in zip(configs, runs[p])]
        log(f"dropout {p}: test accuracy {cell([o.metrics[-1]['test_accuracy'] for o in runs[p]])} ({INTERVAL})")
    figures = {"dropout_gap.png": _gap_figure(runs), "dropout_ensemble.png": _ensemble_figure(curves)}
    results = to_jsonable(
        {
            "dataset": ds.name,
            "train_images": len(ds.y_train),
            "epochs": epochs,
            "hidden": hidden,
            "seeds": seeds,
            "runs": {str(p): [o.metrics for o in outs] for p, outs in runs.items()},
            "ensemble": {str(p): [{"k_accuracy": a, "rescaled": r} for a, r in c] for p, c in curves.items()},
        }
    )
    sections = [("Smoke test", SMOKE_TEST)] * options.quick + report_sections(results)
    return write_report(out, TITLE, sections, figures, results)


TITLE = "Dropout: why it helps, and when"


TABLE_HEADER = ["p", "train acc", "test acc", "test loss", "gap", f"average of {K_MAX} masks", "test-time net"]


def _row(p: str, last: list[dict], ensemble: list[dict] | None) -> list:
    """One table row from the final epoch of each seed (`last`) and, for p > 0, the ensemble curves."""
    train_acc = [r["train_eval_accuracy"] for r in last]
    test_acc = [r["test_accuracy"] for r in last]
    return [
        float(p),
        cell(train_acc),
        cell(test_acc),
        cell([r["test_loss"] for r in last]),
        cell(np.subtract(train_acc, test_acc)),
        cell([e["k_accuracy"][-1] for e in ensemble]) if ensemble else "—",
        cell([e["rescaled"] for e in ensemble]) if ensemble else "—",
    ]


def compare_to_no_dropout(last: dict[str, list[dict]]) -> str:
    """What the runs show about each p > 0 against p = 0: test accuracy and loss, separated only where intervals are."""
    base = last["0.0"]
    fit = mean_interval([r["train_eval_accuracy"] for r in base])[0]
    parts = []
    for p, rows in last.items():
        if p == "0.0":
            continue
        says = []
        for key, better in (("test_accuracy", 1), ("test_loss", -1)):
            (m, h), (m0, h0) = mean_interval([r[key] for r in rows]), mean_interval([r[key] for r in base])
            if m - h > m0 + h0 or m + h < m0 - h0:
                says.append(f"{'better' if (m - m0) * better > 0 else 'worse'} {key.replace('_', ' ')}")
            else:
                says.append(f"no separable difference in {key.replace('_', ' ')}")
        parts.append(f"p = {float(p):g}: " + " and ".join(says))
    return (
        f"Without dropout the network fits its training set (train accuracy {fit:.4f}, eval mode). Against p = 0, "
        + "; ".join(parts)
        + " (intervals over the seeds, as in the table). Fitting the training set perfectly does not by itself mean "
        "that dropout pays off: that is a measurement, made here rate by rate. Where two intervals overlap, these "
        "seeds do not separate the rates."
    )


def report_sections(results: dict) -> list[tuple[str, str]]:
    """The report's sections, from `results` as written to results.json (so a report can be rebuilt from it)."""
    last = {p: [rows[-1] for rows in per_seed] for p, per_seed in results["runs"].items()}
    rows = [_row(p, last[p], results["ensemble"].get(p)) for p in results["runs"]]
    n_train = results.get("train_images")
    return [
        (
            "Setup",
            f"Dataset **{results['dataset']}**"
            + (f" ({n_train} training images)" if n_train else "")
            + f", MLP with hidden layers {tuple(results['hidden'])}, Adam 1e-3, batch 64, {results['epochs']} epochs, "
            f"dropout after every hidden layer, {results['seeds']} seeds per rate. Train accuracy is measured in eval "
            "mode (dropout off), like the test accuracy, so the two are comparable. Every cell is the mean over "
            "seeds ± the half-width of its 95% t-interval.",
        ),
        ("What dropout does", WHAT_DROPOUT_DOES),
        ("Results", markdown_table(TABLE_HEADER, rows)),
        ("Train vs test", "![gap](dropout_gap.png)\n\n" + compare_to_no_dropout(last)),
        (
            "The ensemble view",
            "![ensemble](dropout_ensemble.png)\n\nAveraging the softmax outputs of K networks with independently "
            "sampled masks (Monte-Carlo dropout), against the single test-time network (dashed). One sampled network "
            "is worse than either; the average climbs with K towards the test-time network, which gets there in one "
            "pass.",
        ),
    ]
