"""Seconds, compilation included, until jaxmlp first reaches a target test accuracy.

    python -m benchmarks.time_to_accuracy            # Fashion-MNIST 89%, mnist-mini 92%, MNIST 98% (where present)
    python -m benchmarks.time_to_accuracy --quick    # digits 90% (CI)

Targets are checked after every epoch; the time is compilation plus the epochs up to the
first one at or above the target (data loading excluded). Median over `--repeats` seeds.
"""

from __future__ import annotations

import os
import statistics
import sys

from benchmarks.common import arguments, base_parser, command_line, machine, output_dir, write_outputs

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "datasets")
# name -> (how to load it, recipe or None, target, epochs unless the recipe sets them)
TASKS = {
    "fashion_mnist": ({"data_dir": "/usr/share/datasets/fashion-mnist"}, "fashion-mnist", 0.89, 30),
    "mnist-mini": ({"data_dir": os.path.join(SHARED, "mnist-mini")}, None, 0.92, 30),
    "mnist": ({"name": "mnist"}, None, 0.98, 50),
    "digits": ({"name": "digits"}, None, 0.90, 30),
}


def available(source: dict) -> bool:
    if "data_dir" in source:
        return os.path.isdir(source["data_dir"])
    if source["name"] == "digits":
        return True
    from jaxmlp.data.datasets import tfds_is_prepared

    return tfds_is_prepared(source["name"])


def time_to_target(source: dict, recipe: str | None, target: float, epochs: int, seed: int) -> dict:
    from jaxmlp.config import TrainConfig, load_recipe
    from jaxmlp.data.datasets import load_dataset
    from jaxmlp.runs.loop import Reporting, fit

    overrides = load_recipe(recipe) if recipe else {}
    overrides.setdefault("epochs", epochs)  # a recipe keeps its own length (its schedule depends on it)
    overrides.update(seed=seed, dataset=None)
    config = TrainConfig.from_json(overrides).validate()
    ds = load_dataset(source.get("name"), source.get("data_dir"), config.normalization)
    out = fit(config, ds, reporting=Reporting(progress=False, verbose=False))
    elapsed = out.compile_seconds
    for row in out.metrics:
        elapsed += row["seconds"]
        if row["test_accuracy"] >= target:
            return {"seconds": elapsed, "epoch": row["epoch"], "accuracy": row["test_accuracy"]}
    return {"seconds": None, "epoch": None, "accuracy": out.metrics[-1]["test_accuracy"]}


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = base_parser("time_to_accuracy", __doc__, "seeds per task, median reported (default 3, quick 1)")
    args = p.parse_args(argv)
    tasks = ["digits"] if args.quick else ["fashion_mnist", "mnist-mini", "mnist"]
    repeats = args.repeats or (1 if args.quick else 3)
    rows = []
    for name in tasks:
        source, recipe, target, epochs = TASKS[name]
        if not available(source):
            rows.append({"task": name, "target": target, "skipped": "dataset not available here"})
            continue
        runs = []
        for seed in range(repeats):
            print(f"{name}: seed {seed} ...", file=sys.stderr, flush=True)
            runs.append(time_to_target(source, recipe, target, epochs, seed))
        reached = [r["seconds"] for r in runs if r["seconds"] is not None]
        rows.append(
            {
                "task": name,
                "recipe": recipe or "defaults",
                "target": target,
                "runs": runs,
                "median_seconds": statistics.median(reached) if len(reached) == len(runs) else None,
            }
        )
    table = [
        "| task | config | target | median seconds (compile included) | epochs | runs reaching it |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            table.append(f"| {r['task']} | — | {r['target']:.0%} | skipped: {r['skipped']} | | |")
            continue
        epochs = [x["epoch"] for x in r["runs"] if x["epoch"]]
        med = f"{r['median_seconds']:.1f}" if r["median_seconds"] is not None else "not reached"
        table.append(
            f"| {r['task']} | {r['recipe']} | {r['target']:.0%} | {med} | "
            f"{', '.join(map(str, epochs)) or '—'} | {len(epochs)}/{len(r['runs'])} |"
        )
    results = {
        "machine": machine(),
        "command": command_line("time_to_accuracy", argv),
        "rows": rows,
    }
    for path in write_outputs(
        output_dir(args, "time_to_accuracy"), "time_to_accuracy", results, "\n".join(table), chart(rows)
    ):
        print(path)


def chart(rows: list[dict]):
    import matplotlib.pyplot as plt

    from jaxmlp.show import plots

    done = [r for r in rows if r.get("median_seconds")]
    with plots.style():
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.barh(
            [f"{r['task']} → {r['target']:.0%}" for r in done],
            [r["median_seconds"] for r in done],
            color=plots.COLORS["test"],
        )
        for i, r in enumerate(done):
            ax.text(r["median_seconds"], i, f" {r['median_seconds']:.1f}s", va="center")
        ax.set(xlabel="seconds to target test accuracy (compile included, median)", title="time to accuracy")
        fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
