"""The summary numbers benchmarks/README.md quotes at its top ("Measured here"), rendered from the committed result
files that hold them.

    python -m benchmarks.readme_tables    # print each block; tests/test_readme_numbers.py checks benchmarks/README.md

Every block is a pure function of files under benchmarks/results/, each written by the command it records, so a
summary number can only change by rerunning that command (and committing its results).
"""

from __future__ import annotations

import json
import os

from benchmarks.throughput import mfu_text, toward_worse

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SUMMARY_COLUMNS = [
    ("jaxmlp-scan", "jaxmlp, epoch in one scan"),
    ("jaxmlp-step", "jaxmlp, jitted step"),
    ("torch-eager", "PyTorch eager"),
    ("torch-compile", "torch.compile"),
    ("tracer", "tracer"),
    ("numpy", "NumPy"),
    ("matmul-floor", "XLA matmuls alone"),
]


def load(name: str, folder: str | None = None) -> dict:
    """benchmarks/results/FOLDER/NAME.json (FOLDER defaults to NAME)."""
    with open(os.path.join(RESULTS, folder or name, f"{name}.json")) as f:
        return json.load(f)


def _cell(row: dict) -> str:
    speed = f"{row['samples_per_s']:,.0f}/s"
    eager = toward_worse(row.get("vs_torch_eager"), 3, higher_is_better=True)
    if row["system"] == "jaxmlp-scan":
        return f"{speed} ({eager}x eager, MFU {mfu_text(row)})"
    if row["system"] == "matmul-floor":
        return f"{speed} ({eager}x, MFU {mfu_text(row)})"
    if row["system"] == "tracer":
        return f"{speed} ({toward_worse(row['step_time_vs_numpy'], 3, higher_is_better=False)}x NumPy's step time)"
    return speed


def throughput_summary(results: dict, mlp: str = "784-128-64-10") -> str:
    """The summary's throughput table: the user's MLP, every system, batch 64 and 512."""
    rows = {(r["system"], r["batch"]): r for r in results["rows"] if r["mlp"] == mlp and "error" not in r}
    lines = [
        "| batch | " + " | ".join(title for _, title in SUMMARY_COLUMNS) + " |",
        "| --- " * (len(SUMMARY_COLUMNS) + 1) + "|",
    ]
    for batch in (64, 512):
        lines.append(f"| {batch} | " + " | ".join(_cell(rows[(s, batch)]) for s, _ in SUMMARY_COLUMNS) + " |")
    return "\n".join(lines)


def gpu_summary(results: dict, mlp: str = "784-128-64-10") -> str:
    """The summary's GPU sentence: a 60,000-sample epoch of the user's MLP, whole-epoch scan against PyTorch eager."""
    rows = {(r["system"], r["batch"]): r for r in results["rows"] if r["mlp"] == mlp and "error" not in r}
    ms = {key: toward_worse(r["epoch_ms"], 1, higher_is_better=False) for key, r in rows.items()}
    return (
        f"a 60,000-sample epoch of the same MLP takes {ms[('jaxmlp-scan', 64)]} ms at batch 64 and "
        f"{ms[('jaxmlp-scan', 512)]} ms at batch 512 with the\nwhole-epoch scan (PyTorch eager on the same GPU: "
        f"{ms[('torch-eager', 64)]} ms and {ms[('torch-eager', 512)]} ms)"
    )


def measured_here(runs: dict, tracer: dict) -> str:
    """The "Measured here" table: benchmarks.measured_here's rows, then tracer_mnist's last epoch."""
    from benchmarks.measured_here import MNIST_MINI, markdown_table

    last = tracer["rows"][-1]
    command = tracer["command"].replace(runs["data_dir"], MNIST_MINI)
    return markdown_table(runs) + (
        f"\n| tracer, the user's MLP, {last['epoch']} epochs | `{command}` | "
        f"{last['test_accuracy']:.2%} test accuracy |"
    )


def blocks() -> dict[str, str]:
    """Each summary block, by what it shows."""
    return {
        "measured here": measured_here(load("measured_here"), load("tracer_mnist")),
        "throughput": throughput_summary(load("throughput")),
        "gpu": gpu_summary(load("throughput", "throughput_h100")),
    }


def main() -> None:
    for name, text in blocks().items():
        print(f"<!-- {name} -->\n{text}\n")


if __name__ == "__main__":
    main()
