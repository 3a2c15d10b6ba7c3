"""`jaxmlp study optimizers`: SGD, momentum, Nesterov, RMSProp, Adam and AdamW on the same MLP and data.

Each optimizer gets its best learning rate from a small grid (chosen on a
validation split with seed TUNING_SEED, never on the test set), then trains
with several fresh seeds (FINAL_SEED, FINAL_SEED + 1, ...), none of them the
tuning seed; curves show mean ± std. Two more views: paths on 2-D surfaces, and Adam's
per-parameter step sizes against SGD's single one.

`--quick` is a smoke test: one preset learning rate per optimizer (no tuning), a
tiny MLP for two epochs on `digits`. It shows that the study runs end to end; its
report and figures say so, and that its ranking is not evidence about the optimizers.
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

from jaxmlp.config import TrainConfig
from jaxmlp.core.train import steps_per_epoch
from jaxmlp.names import OPTIMIZERS
from jaxmlp.show import plots
from jaxmlp.show.studies import landscapes
from jaxmlp.show.studies.common import (
    StudyOptions,
    fit_quietly,
    log,
    markdown_table,
    output_dir,
    step_times,
    study_data,
    to_jsonable,
    write_report,
)
from jaxmlp.show.studies.intervals import INTERVAL, cell

LR_GRIDS = {
    "sgd": [0.03, 0.1, 0.3],
    "momentum": [0.003, 0.01, 0.03],
    "nesterov": [0.003, 0.01, 0.03],
    "rmsprop": [1e-4, 3e-4, 1e-3],
    "adam": [3e-4, 1e-3, 3e-3],
    "adamw": [3e-4, 1e-3, 3e-3],
}
BATCH_SIZE = 64  # the user's
TUNING_SEED = 0  # the seed of every tuning run
FINAL_SEED = 100  # the final runs use FINAL_SEED, FINAL_SEED + 1, ...: seeds the tuning never saw
QUICK_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "rmsprop": 1e-3, "adam": 1e-3, "adamw": 1e-3}
COLORS = dict(zip(OPTIMIZERS, plt.get_cmap("tab10").colors))
# Nesterov and AdamW run nearly on top of momentum and Adam: dashed, so the solid curve stays visible underneath.
LINESTYLES = {"nesterov": "--", "adamw": "--"}
SMOKE_TEST = (
    "**Smoke test (`--quick`).** Each optimizer ran at one preset learning rate ({lrs}), with no tuning, "
    "training a {arch} MLP for {epochs} epochs on {n} `{dataset}` images. This checks that the study runs "
    "end to end and draws its figures. Its ranking means nothing about the optimizers: untuned rates and two "
    "epochs mostly measure how well each preset rate suits so short a run. For the comparison, run the study "
    "without `--quick` (a learning-rate grid tuned on a validation split, 784-128-64-10 on MNIST), or see "
    "notebook 3 (`docs/notebooks/03_optimizers.md`)."
)

UPDATE_RULES = r"""
With gradient $g_t$ and learning rate $\eta$ (PyTorch's conventions, which `jaxmlp.core.optim` follows: for RMSProp
that is `optax.rmsprop(..., eps_in_sqrt=False)`, ε outside the square root):

- **SGD**: $\theta \leftarrow \theta - \eta g_t$ — one step size for every parameter.
- **Momentum** ($\beta = 0.9$): $b_t = \beta b_{t-1} + g_t$, $\theta \leftarrow \theta - \eta b_t$ — a running sum that
  builds speed along consistent directions and cancels oscillation across a valley.
- **Nesterov**: $b_t = \beta b_{t-1} + g_t$, $\theta \leftarrow \theta - \eta (g_t + \beta b_t)$
  — looks one step ahead.
- **RMSProp** ($\alpha = 0.99$): $v_t = \alpha v_{t-1} + (1-\alpha) g_t^2$,
  $\theta \leftarrow \theta - \eta\, g_t / (\sqrt{v_t} + \epsilon)$.
- **Adam** ($\beta_1 = 0.9, \beta_2 = 0.999$): $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$,
  $v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$, $\hat m_t = m_t / (1-\beta_1^t)$, $\hat v_t = v_t / (1-\beta_2^t)$,
  $\theta \leftarrow \theta - \eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)$.
- **AdamW**: Adam, plus decoupled weight decay $\theta \leftarrow \theta - \eta \lambda \theta$
  that does not pass through $\hat v$.

The difference that matters: SGD and momentum move every parameter with the same $\eta$; RMSProp and Adam divide
by $\sqrt{\hat v}$, a per-parameter estimate of the gradient's scale, so each parameter gets its own step size.
"""


def _config(options: StudyOptions, optimizer: str, lr: float, seed: int, val: bool) -> TrainConfig:
    return TrainConfig(
        optimizer=optimizer,
        lr=lr,
        seed=seed,
        epochs=options.epochs or (2 if options.quick else 8),
        hidden=(32,) if options.quick else (128, 64),
        batch_size=BATCH_SIZE,
        weight_decay=1e-2 if optimizer == "adamw" else 0.0,
        val_fraction=0.1 if val else 0.0,
    )


def _bands(ax, xs: list[np.ndarray], ys: list[np.ndarray], color, label, ls="-"):
    n = min(len(x) for x in xs)
    x = np.mean([x[:n] for x in xs], 0)
    y = np.array([y[:n] for y in ys])
    mean, std = y.mean(0), y.std(0)
    ax.plot(x, mean, color=color, label=label, ls=ls)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, lw=0)


def _curves_figure(runs: dict, best_lr: dict, epoch_steps: int, quick: bool):
    with plots.style():
        fig, axes = plt.subplots(2, 2, figsize=(12, 8))
        for name, outs in runs.items():
            c, ls = COLORS[name], LINESTYLES.get(name, "-")
            window = max(1, epoch_steps // 4)
            losses = [plots.smooth(o.steps["loss"], window) for o in outs]
            steps = [np.arange(1, len(curve) + 1) for curve in losses]
            times = [step_times(o.metrics, epoch_steps) for o in outs]
            label = f"{name} (lr {best_lr[name]:g})"
            _bands(axes[0, 0], steps, losses, c, label, ls)
            _bands(axes[0, 1], times, losses, c, label, ls)
            epochs = [np.array([r["epoch"] * epoch_steps for r in o.metrics]) for o in outs]
            accs = [np.array([r["test_accuracy"] for r in o.metrics]) for o in outs]
            _bands(axes[1, 0], epochs, accs, c, label, ls)
            epoch_times = [np.cumsum([r["seconds"] for r in o.metrics]) for o in outs]
            _bands(axes[1, 1], epoch_times, accs, c, label, ls)
        axes[0, 0].set(xlabel="optimizer step", ylabel="training loss (smoothed)", yscale="log", title="loss vs step")
        axes[0, 1].set(
            xlabel="wall time (s, compile excluded)",
            ylabel="training loss (smoothed)",
            yscale="log",
            title="loss vs wall time",
        )
        axes[1, 0].set(xlabel="optimizer step", ylabel="test accuracy", title="test accuracy vs step")
        axes[1, 1].set(
            xlabel="wall time (s, compile excluded)", ylabel="test accuracy", title="test accuracy vs wall time"
        )
        for ax in axes.flat:
            ax.legend(fontsize=8)
        title = (
            "SMOKE TEST (--quick): one preset lr each, untuned; the ranking means nothing"
            if quick
            else "each optimizer at its tuned learning rate: mean ± std over seeds"
        )
        fig.suptitle(title, fontweight="bold", color="firebrick" if quick else "black")
        fig.tight_layout()
    return fig


def _surfaces_figure(paths: dict):
    with plots.style():
        fig, axes = plt.subplots(1, 3, figsize=(17, 5))
        for ax, (surface, per_opt) in zip(axes, paths.items()):
            f, start, minimum, (x0, x1, y0, y1), _ = landscapes.SURFACES[surface]
            X, Y = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
            Z = np.asarray(f(np.stack([X, Y])))
            levels = (
                np.quantile(Z, np.linspace(0.01, 0.99, 25))
                if surface == "saddle"
                else np.logspace(np.log10(max(Z.min(), 1e-3)), np.log10(Z.max()), 25)
            )
            ax.contour(X, Y, Z, levels=np.unique(levels), cmap="Greys", linewidths=0.6)
            for name, (_lr, path) in per_opt.items():
                p = path[np.all(np.isfinite(path), 1)]
                ax.plot(p[:, 0], p[:, 1], color=COLORS[name], lw=1.3, label=name)
            ax.plot(*start, "ko", ms=6, label="start")
            ax.plot(*(minimum or (np.nan, np.nan)), "*", color="gold", ms=14, mec="k", label="minimum")
            ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y", title=surface)
        fig.suptitle(
            "optimizer paths from the same start, each at its best grid learning rate (AdamW = Adam here: "
            "no weight decay on a surface)",
            fontweight="bold",
        )
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=8)
    return fig


def adam_step_sizes(opt_state, lr: float, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per parameter: Adam's effective learning rate lr/(√v̂+ε), its step |lr·m̂/(√v̂+ε)|, and |m̂|."""
    adam = next(
        s
        for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
        if isinstance(s, optax.ScaleByAdamState)
    )
    t = int(adam.count)
    m = np.concatenate([np.ravel(a) for a in jax.tree.leaves(adam.mu)]) / (1 - 0.9**t)
    v = np.concatenate([np.ravel(a) for a in jax.tree.leaves(adam.nu)]) / (1 - 0.999**t)
    denom = np.sqrt(v) + eps
    return lr / denom, np.abs(lr * m / denom), np.abs(m)


def _step_size_figure(effective_lr, adam_step, sgd_lr, sgd_step):
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        bins = np.logspace(np.log10(max(effective_lr.min(), 1e-6)), np.log10(effective_lr.max()), 60)
        axes[0].hist(
            effective_lr, bins=bins, color=COLORS["adam"], alpha=0.8, label="Adam: lr / (√v̂ + ε), one per parameter"
        )
        axes[0].axvline(sgd_lr, color=COLORS["sgd"], lw=2.5, label=f"SGD: the same lr = {sgd_lr:g} for every parameter")
        axes[0].set(
            xscale="log",
            yscale="log",
            xlabel="effective learning rate",
            ylabel="number of parameters",
            title="per-parameter learning rate at the end of training",
        )
        positive = np.concatenate([adam_step[adam_step > 0], sgd_step[sgd_step > 0]])
        bins = np.logspace(np.log10(max(positive.min(), 1e-12)), np.log10(positive.max()), 60)
        axes[1].hist(
            adam_step[adam_step > 0], bins=bins, color=COLORS["adam"], alpha=0.7, label="Adam: |lr · m̂ / (√v̂ + ε)|"
        )
        axes[1].hist(
            sgd_step[sgd_step > 0],
            bins=bins,
            color=COLORS["sgd"],
            alpha=0.6,
            label="SGD: |lr · m̂| (same gradient estimate m̂)",
        )
        axes[1].set(
            xscale="log",
            yscale="log",
            xlabel="size of one step",
            ylabel="number of parameters",
            title="how far each parameter moves in one step",
        )
        for ax in axes:
            ax.legend(fontsize=8)
        fig.tight_layout()
    return fig


def _train_optimizer(options: StudyOptions, ds, name: str, seeds: int) -> tuple[float, list, dict]:
    """Choose `name`'s learning rate (on a validation split; in quick mode the preset one, untrained), run the seeds."""
    if options.quick:
        lr, scores = QUICK_LR[name], None
    else:
        scores = {}
        for lr in LR_GRIDS[name]:
            o = fit_quietly(_config(options, name, lr, TUNING_SEED, val=True), ds)
            scores[lr] = o.metrics[-1]["val_loss"] if o is not None else np.inf
            log(f"{name:9s} lr {lr:<7g} validation loss {scores[lr]:.4f}")
        lr = min(scores, key=scores.get)
    outs = [fit_quietly(_config(options, name, lr, seed, val=False), ds) for seed in final_seeds(seeds)]
    acc = np.array([o.metrics[-1]["test_accuracy"] for o in outs])
    result = {
        "grid": scores,
        "lr": lr,
        "tuned": not options.quick,
        "test_accuracy": acc,
        "final_train_loss": np.array([o.metrics[-1]["train_loss"] for o in outs]),
        "train_seconds": np.array([sum(r["seconds"] for r in o.metrics) for o in outs]),
    }
    log(f"{name:9s} lr {lr:g}: test accuracy {cell(acc)} ({INTERVAL} over {seeds} seeds)")
    return lr, outs, result


def final_seeds(n: int) -> list[int]:
    """The seeds of the final runs: n fresh ones, disjoint from the tuning seed."""
    return list(range(FINAL_SEED, FINAL_SEED + n))


def _surface_paths() -> tuple[dict, list]:
    """Each optimizer's path on each 2-D surface at its best grid learning rate, and the steps-to-1e-3 table."""
    paths, rows = {}, []
    for surface in landscapes.SURFACES:
        paths[surface] = {}
        for name in OPTIMIZERS[:-1]:  # AdamW without weight decay is Adam
            lr, path, hit = landscapes.tune(surface if surface != "saddle" else "ill-conditioned quadratic", name, 1e-3)
            if surface == "saddle":
                path = np.asarray(
                    landscapes.trajectories(
                        np.array([lr], np.float32), "saddle", name, landscapes.SURFACES["saddle"][4]
                    )
                )[0]
            else:
                rows.append([surface, name, f"{lr:.3g}", hit if hit is not None else "not reached"])
            paths[surface][name] = (lr, path)
    return paths, rows


def run(options: StudyOptions) -> str:
    out = output_dir("optimizers", options)
    ds = study_data(options)
    seeds = max(options.seeds, 3) if not options.quick else 3
    lrs, runs, results = {}, {}, {"dataset": ds.name, "train_size": len(ds.y_train), "optimizers": {}}
    results["mode"] = "smoke test" if options.quick else "tuned on a validation split"
    for name in OPTIMIZERS:
        lrs[name], runs[name], results["optimizers"][name] = _train_optimizer(options, ds, name, seeds)
    paths, surface_rows = _surface_paths()
    results["surfaces"] = surface_rows

    eff, adam_step, m_hat = adam_step_sizes(runs["adam"][0].state.opt_state, lrs["adam"])
    sgd_step = lrs["sgd"] * m_hat  # SGD's step for the same (smoothed) gradient, at its own lr
    results["adam_effective_lr_percentiles"] = dict(
        zip(["p1", "p5", "p50", "p95", "p99", "max"], [*np.percentile(eff, [1, 5, 50, 95, 99]), eff.max()])
    )
    results["adam_lr_over_eps"] = lrs["adam"] / 1e-8
    results["adam_largest_step_over_lr"] = float(adam_step.max() / lrs["adam"])
    epoch_steps = steps_per_epoch(len(ds.y_train), BATCH_SIZE)
    figures = {
        "optimizer_curves.png": _curves_figure(runs, lrs, epoch_steps, options.quick),
        "optimizer_paths.png": _surfaces_figure(paths),
        "adam_step_sizes.png": _step_size_figure(eff, adam_step, lrs["sgd"], sgd_step),
    }
    title = "Optimizers: what separates SGD from Adam" + (" (smoke test)" if options.quick else "")
    sections = _sections(options, ds, seeds, results)
    return write_report(out, title, sections, figures, to_jsonable(results))


def _sections(options: StudyOptions, ds, seeds: int, results: dict) -> list[tuple[str, str]]:
    """The report's text around the measured numbers in `results`."""
    setup = _config(options, "adam", 1e-3, 0, val=False)  # what every run shares
    per_opt = results["optimizers"]
    table = [
        [
            name,
            f"{r['lr']:g}",
            cell(r["test_accuracy"]),
            f"{np.mean(r['final_train_loss']):.4f}",
            f"{np.mean(r['train_seconds']):.2f}",
        ]
        for name, r in per_opt.items()
    ]
    choice = (
        f"Each optimizer ran at the preset learning rate {QUICK_LR} (no tuning)"
        if options.quick
        else f"Learning rates from the grid {LR_GRIDS} were chosen by the lowest validation loss (10% of the "
        "training images held out)"
    )
    steps = {row[1]: row[3] for row in results["surfaces"] if row[0] == "ill-conditioned quadratic"}
    momentum_lr = per_opt["momentum"]["lr"]
    sections = [("Smoke test", _smoke_test_text(options, ds, setup))] if options.quick else []
    sections += [
        (
            "Setup",
            f"Dataset **{ds.name}**, {len(ds.y_train)} training images, MLP {ds.num_features}-"
            f"{'-'.join(map(str, setup.hidden))}-{ds.num_classes}, batch {setup.batch_size}, "
            f"{setup.epochs} epochs. {choice}, with seed {TUNING_SEED}; then {seeds} fresh seeds "
            f"({', '.join(map(str, final_seeds(seeds)))}) were trained on all training images. "
            "Wall times exclude compilation.",
        ),
        ("Update rules", UPDATE_RULES),
        (
            "Results",
            markdown_table(
                [
                    "optimizer",
                    "lr (preset, untuned)" if options.quick else "tuned lr",
                    "test accuracy (mean ± 95% interval)",
                    "final train loss",
                    "train seconds",
                ],
                table,
            )
            + f"\n\nMomentum (β = 0.9) at lr {momentum_lr:g} moves like SGD at {momentum_lr / (1 - 0.9):g}: "
            "its buffer sums a steady gradient to g/(1−β), so its effective step is η/(1−β). Two runs whose "
            "rates stand in that ratio take the same average step, and their curves nearly coincide.",
        ),
        (
            "Learning curves",
            "![curves](optimizer_curves.png)\n\nShaded: ± one standard deviation across seeds. "
            "Left: per optimizer step; right: against wall-clock time, where per-step cost differences "
            "(Adam keeps two extra arrays) show up. Nesterov and AdamW are dashed: they run nearly on top of "
            "momentum and Adam.",
        ),
        ("Paths on 2-D surfaces", _surfaces_text(results["surfaces"], steps)),
        ("Adam's per-parameter step size", _step_size_text(results)),
    ]
    return sections


def _smoke_test_text(options: StudyOptions, ds, setup: TrainConfig) -> str:
    arch = f"{ds.num_features}-{'-'.join(map(str, setup.hidden))}-{ds.num_classes}"
    lrs = ", ".join(f"{k} {v:g}" for k, v in QUICK_LR.items())
    return SMOKE_TEST.format(lrs=lrs, arch=arch, epochs=setup.epochs, n=len(ds.y_train), dataset=ds.name)


def _surfaces_text(rows: list, steps: dict) -> str:
    return (
        "![paths](optimizer_paths.png)\n\nSteps to get within 1e-3 of the minimum, each "
        "optimizer at its best learning rate from a grid of 17 (the grid search is cheap on a surface):\n\n"
        + markdown_table(["surface", "optimizer", "lr", "steps to 1e-3"], rows)
        + "\n\nOn the valley (curvature 50x larger along y than along x) SGD's step must be small enough for the "
        "steep direction, so it crawls along the flat one; momentum accumulates speed along x. RMSProp, which "
        f"rescales each coordinate by its own gradient scale, is fastest ({steps.get('rmsprop')} steps); Adam "
        f"({steps.get('adam')}) is no faster than momentum ({steps.get('momentum')}). The valley's axes are the "
        "coordinate axes, the best case for a per-coordinate rescaling. A per-coordinate rescaling is not "
        "rotation-invariant (SGD and momentum are): on the same valley rotated by 45°, RMSProp's edge disappears "
        "(measured in notebook 3, `docs/notebooks/03_optimizers.md`; the evidence there is RMSProp's, since Adam is "
        "no faster than momentum in either orientation). On the saddle (learning rates "
        "from the valley), the adaptive methods escape along y fastest because they normalize the tiny initial "
        "gradient there."
    )


def _step_size_text(results: dict) -> str:
    largest = results["adam_largest_step_over_lr"]
    p = results["adam_effective_lr_percentiles"]
    return (
        "![steps](adam_step_sizes.png)\n\nLeft: Adam's effective learning rate lr/(√v̂+ε) at the end of "
        f"training (one seed). The bulk already spans orders of magnitude: the middle 98% of parameters lie between "
        f"{p['p1']:.2g} and {p['p99']:.2g} (median {p['p50']:.2g}). Only the tail above that, up to lr/ε = "
        f"{results['adam_lr_over_eps']:.0e} (largest here {p['max']:.2g}), comes from parameters whose gradient is "
        "≈ 0, such as the incoming weights of a hidden unit that is never active: there √v̂ ≈ 0 and ε sets the "
        "value, while m̂ ≈ 0 keeps the step itself near zero. What Adam bounds is the step (Kingma & Ba 2015, "
        "§2.1): |Δ| = lr·|m̂|/(√v̂+ε) ≤ lr·(1−β₁)/√(1−β₂) ≈ 3.16·lr in their sparse case (a gradient zero at every "
        "step but the last), and about lr or less usually; over all gradient sequences the bound is ≈ 7.27·lr "
        "(Cauchy–Schwarz; notebook 3). Right: the steps themselves; the largest here is "
        f"{largest:.3g}·lr."
    )
