"""Evaluate a finished run from its directory: restore, run the test split, report."""

from __future__ import annotations

import dataclasses
import sys

import jax
import numpy as np

from jaxmlp.config import TrainConfig
from jaxmlp.core.parallel import to_host
from jaxmlp.core.train import EvalSet, TrainState, confusion_matrix, make_evaluate, make_program, state_shapes
from jaxmlp.data.datasets import Dataset, class_names, load_dataset
from jaxmlp.runs.lifecycle import RunDir, model_shape


@dataclasses.dataclass
class Report:
    dataset: str
    loss: float
    accuracy: float
    confusion: np.ndarray  # counts, rows = true class
    labels: np.ndarray
    predictions: np.ndarray
    confidence: np.ndarray
    images: np.ndarray  # (N, H*W) normalized test images, for galleries
    image_shape: tuple[int, int]

    @property
    def per_class_accuracy(self) -> np.ndarray:
        return np.diag(self.confusion) / np.maximum(self.confusion.sum(1), 1)


def evaluate_run(run_dir: str, dataset: str | None = None, data_dir: str | None = None) -> tuple[Report, TrainState]:
    """Restore a run's latest checkpoint and evaluate it on its own test split (or another dataset's)."""
    run = RunDir.open(run_dir)
    config = run.config()
    if dataset is None and data_dir is None:
        dataset, data_dir = config.dataset, config.data_dir
    ds = load_dataset(dataset, data_dir, config.normalization)
    like = restore_target(config, ds)
    try:
        state = restore_latest(run, like, model_shape(ds))
    finally:
        run.release()
    return evaluate_state(config, ds, state), state


def restore_target(config: TrainConfig, ds: Dataset) -> TrainState:
    """The shapes, dtypes and placement a checkpoint is read into: every array on this process's first device.

    Only shapes, not a built (and compiled) state to overwrite, which would cost more than the evaluation. The
    placement must be given: left out, orbax takes the one saved with the checkpoint, the training run's mesh,
    whose devices (8 of them, or another process's) an evaluation may not have."""
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    shapes = state_shapes(config, ds.num_features, ds.num_classes, make_program(config, ds).tx, mesh=None)
    return jax.tree.map(lambda a: a.update(sharding=here), shapes)


def restore_latest(run: RunDir, like: TrainState, shape: dict[str, int]) -> TrainState:
    """The run's last committed checkpoint, read without writing anything; while a `jaxmlp train` holds the run,
    say so (see `RunDir.read_committed`)."""
    state, trainer = run.read_committed(lambda checkpoints: checkpoints.restore(like, shape, run.config().to_json())[0])
    if trainer is not None:
        print(f"training in progress (pid {trainer}); showing checkpoint {int(state.step)}", file=sys.stderr)
    return state


def evaluate_state(config: TrainConfig, ds: Dataset, state: TrainState) -> Report:
    program = make_program(config, ds)
    state = to_host(state)  # evaluate on this process's default device, whatever mesh trained it
    result = make_evaluate(program)(state, EvalSet.from_arrays(ds.x_test, ds.y_test))
    return Report(
        ds.name,
        result["loss"],
        result["accuracy"],
        confusion_matrix(ds.y_test, result["predictions"], ds.num_classes),
        ds.y_test,
        result["predictions"],
        result["confidence"],
        ds.x_test,
        ds.image_shape,
    )


def format_report(r: Report) -> str:
    n = r.confusion.shape[0]
    lines = [
        f"{r.dataset}: {int(r.confusion.sum())} test samples, loss {r.loss:.4f}, accuracy {r.accuracy:.4f}",
        "",
        "per-class accuracy:",
    ]
    names = class_names(r.dataset)
    label = (lambda c: f"class {c} ({names[c]})") if names else (lambda c: f"class {c}")
    lines += [
        f"  {label(c)}: {a:.4f} ({int(r.confusion[c, c])}/{int(r.confusion[c].sum())})"
        for c, a in enumerate(r.per_class_accuracy)
    ]
    width = max(5, len(str(int(r.confusion.max()))) + 1)
    lines += [
        "",
        "confusion matrix (rows: true class, columns: predicted):",
        "true\\pred" + "".join(f"{c:>{width}}" for c in range(n)),
    ]
    lines += [f"{c:>9}" + "".join(f"{v:>{width}}" for v in row) for c, row in enumerate(r.confusion)]
    return "\n".join(lines)
