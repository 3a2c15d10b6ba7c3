"""The README's "Measured here" table: `jaxmlp train` run as a user runs it, timed from start to exit.

    python -m benchmarks.mnist_mini data/mnist-mini                   # once: the 4,000/1,000 MNIST subset
    python -m benchmarks.measured_here --data-dir data/mnist-mini     # the README's rows
    python -m benchmarks.measured_here --quick                        # digits, 2 epochs (CI)

Each row is one `jaxmlp train` command in a fresh process (data loading, compilation, training, evaluation
and the figures included); its accuracy is the last epoch's, read back from the run's metrics.jsonl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import arguments, base_parser, command_line, die_with_parent, machine, output_dir, write_outputs

# (what, `jaxmlp` arguments with DATA for --data-dir, the metric reported)
RUNS = [
    ("digits, defaults", ["train", "--dataset", "digits"], "test_accuracy"),
    (
        "mnist-mini (4000/1000 real MNIST), defaults, 30 epochs",
        ["train", "--data-dir", "DATA", "--epochs", "30"],
        "test_accuracy",
    ),
    (
        "mnist-small recipe, validation split of the 4000 images",
        ["train", "--recipe", "mnist-small", "--data-dir", "DATA", "--val-fraction", "0.2"],
        "val_accuracy",
    ),
    (
        "mnist-small recipe, all 4000 images",
        ["train", "--recipe", "mnist-small", "--data-dir", "DATA"],
        "test_accuracy",
    ),
]
# How the tables show the mnist-mini folder, wherever it was when measured: the path the README's set-up
# (`python -m benchmarks.mnist_mini data/mnist-mini`) gives it; that command checks its arrays by hash.
MNIST_MINI = "data/mnist-mini"
METRIC_NAMES = {"test_accuracy": "test accuracy", "val_accuracy": "validation accuracy"}


def run_command(args: list[str], out: str) -> dict:
    """Run `jaxmlp ARGS --out OUT`; return its wall time, its last epoch's metrics and the machine's load."""
    load = os.getloadavg()[0]  # runnable processes, 1-minute average: above the core count, others are running
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "jaxmlp", *args, "--out", out, "--no-progress"],
        capture_output=True,
        text=True,
        preexec_fn=die_with_parent,
    )
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    with open(os.path.join(out, "metrics.jsonl")) as f:
        last = json.loads(f.read().splitlines()[-1])
    return {"seconds": seconds, "epochs": last["epoch"], "metrics": last, "load_average": load}


def markdown_table(results: dict) -> str:
    """The rows as the README shows them."""
    lines = ["| what | command | result |", "| --- | --- | --- |"]
    for r in results["rows"]:
        shown = " ".join(["jaxmlp", *r["args"]]).replace("DATA", MNIST_MINI)
        if "error" in r:
            lines.append(f"| {r['what']} | `{shown}` | failed: {r['error']} |")
            continue
        value = r["metrics"][r["metric"]]
        lines.append(
            f"| {r['what']} | `{shown}` | {value:.2%} {METRIC_NAMES[r['metric']]}, {r['seconds']:.1f} s for the "
            f"whole command (load average {r['load_average']:.1f} on {results['machine']['cores']} cores) |"
        )
    return "\n".join(lines)


def chart(rows: list[dict]):
    import matplotlib.pyplot as plt

    from jaxmlp.show import plots

    ok = [r for r in rows if "error" not in r]
    with plots.style():
        fig, ax = plt.subplots(figsize=(7, 0.6 * len(ok) + 1.5))
        ax.barh([r["what"] for r in ok], [r["seconds"] for r in ok])
        ax.set(xlabel="seconds for the whole `jaxmlp train` command", title="measured here")
        ax.invert_yaxis()
        fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = base_parser("measured_here", __doc__)
    p.add_argument("--data-dir", help="mnist-mini's IDX folder (without it, only the digits row runs)")
    args = p.parse_args(argv)
    runs = [r for r in RUNS if "DATA" not in r[1] or args.data_dir]
    if args.quick:  # one short run: enough to show the command, the timing and the metrics read back
        runs = [("digits, 2 epochs", ["train", "--dataset", "digits", "--epochs", "2"], "test_accuracy")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (what, jaxmlp_args, metric) in enumerate(runs):
            print(f"{what} ...", file=sys.stderr, flush=True)
            concrete = [args.data_dir if a == "DATA" else a for a in jaxmlp_args]
            rows.append({"what": what, "args": jaxmlp_args, "metric": metric, **run_command(concrete, f"{tmp}/{i}")})
    results = {
        "machine": machine(),
        "command": command_line("measured_here", argv),
        "data_dir": args.data_dir,
        "rows": rows,
    }
    out = output_dir(args, "measured_here")
    for path in write_outputs(out, "measured_here", results, markdown_table(results), chart(rows)):
        print(path)


if __name__ == "__main__":
    main()
