"""The figures of one run, written to `runs/<name>/figures/` after training or by `jaxmlp plot`."""

from __future__ import annotations

import os

from jaxmlp import plots
from jaxmlp.evaluate import Report
from jaxmlp.parallel import to_host
from jaxmlp.runs import RunDir
from jaxmlp.train import TrainState, linear_kernels


def write_run_figures(run: RunDir, report: Report, state: TrainState) -> list[str]:
    """Learning curves, confusion matrices, misclassified gallery, first-layer weights, layer dynamics."""
    os.makedirs(run.figures_dir, exist_ok=True)
    path = lambda name: os.path.join(run.figures_dir, name)
    metrics, steps = run.read_metrics(), run.read_steps()
    written = [
        plots.save(plots.learning_curves(metrics, steps.get("loss")), path("learning_curves.png")),
        plots.save(plots.confusion_matrices(report.confusion), path("confusion_matrix.png")),
        plots.save(
            plots.misclassified_gallery(
                report.images, report.image_shape, report.labels, report.predictions, report.confidence
            ),
            path("misclassified.png"),
        ),
    ]
    first = next(iter(linear_kernels(to_host(state.params)).values()))
    written.append(plots.save(plots.first_layer_weights(first, report.image_shape), path("first_layer_weights.png")))
    if len(steps.get("stats_step", [])):
        written.append(
            plots.save(
                plots.layer_dynamics(
                    steps["stats_step"], steps["grad_norm"], steps["update_ratio"], [str(s) for s in steps["layers"]]
                ),
                path("layer_dynamics.png"),
            )
        )
    return written
