"""What every study shares: its options, its data, running one configuration, and writing the report."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sys

import numpy as np

from jaxmlp.config import TrainConfig
from jaxmlp.data.datasets import Dataset, load_dataset
from jaxmlp.errors import ConfigError
from jaxmlp.files import write_atomic, write_json
from jaxmlp.runs.interrupts import Interrupted
from jaxmlp.runs.loop import Diverged, Outcome, Reporting, fit
from jaxmlp.show import plots


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    quick: bool = False
    out: str | None = None
    dataset: str | None = None
    data_dir: str | None = None
    seeds: int = 3
    epochs: int | None = None
    train_size: int = 10_000


def output_dir(name: str, options: StudyOptions) -> str:
    path = options.out or os.path.join("studies", f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{name}")
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "report.md")):
        raise ConfigError(f"--out {path} already holds a study report; pick another --out")
    return path  # created by `write_report`, so a study that fails or is stopped leaves no folder


def study_data(options: StudyOptions) -> Dataset:
    """The study's dataset: `digits` in quick mode, else the user's choice, capped at `train_size` training images."""
    if options.quick and options.dataset is None and options.data_dir is None:
        return load_dataset("digits", normalization="standardize")
    ds = load_dataset(options.dataset, options.data_dir, "standardize")
    if len(ds.y_train) > options.train_size:
        ds = dataclasses.replace(ds, x_train=ds.x_train[: options.train_size], y_train=ds.y_train[: options.train_size])
    return ds


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fit_quietly(config: TrainConfig, ds: Dataset, eval_train: bool = False, epoch_hook=None) -> Outcome | None:
    """One in-memory run (no run directory); None if it diverged.

    A signal stops the whole study (`Interrupted`), so no cut-short run is averaged into a report."""
    reporting = Reporting(progress=False, verbose=False, eval_train=eval_train, epoch_hook=epoch_hook)
    try:
        out = fit(config.validate(), ds, reporting=reporting)
    except Diverged:
        return None
    if out.status != "finished":
        raise Interrupted
    return out


def step_times(metrics: list[dict], steps_per_epoch: int) -> np.ndarray:
    """Wall-clock seconds at each optimizer step, spreading every epoch's measured time evenly over its steps."""
    t, out = 0.0, []
    for row in metrics:
        out.append(t + row["seconds"] * np.arange(1, steps_per_epoch + 1) / steps_per_epoch)
        t += row["seconds"]
    return np.concatenate(out) if out else np.zeros(0)


def markdown_table(header: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(
    out: str, title: str, sections: list[tuple[str, str]], figures: dict[str, object], results: dict
) -> str:
    """Save each figure as PNG, `results.json`, and `report.md` (sections of markdown, figures inline)."""
    os.makedirs(out, exist_ok=True)
    for name, fig in figures.items():
        plots.save(fig, os.path.join(out, name))
    write_json(os.path.join(out, "results.json"), results)
    body = [f"# {title}", ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text.strip(), ""]
    write_atomic(os.path.join(out, "report.md"), "\n".join(body))
    return os.path.join(out, "report.md")


def to_jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
