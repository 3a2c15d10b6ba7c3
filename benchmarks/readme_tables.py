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


def cli_summary(results: dict, mlp: str = "784-128-64-10") -> str:
    """The summary's `jaxmlp train` table: the command's own epoch loop (jaxmlp-cli) beside the scan and PyTorch
    eager, all three from one run of the throughput benchmark, batch 64 and 512."""
    rows = {(r["system"], r["batch"]): r for r in results["rows"] if r["mlp"] == mlp and "error" not in r}
    ratio = lambda r, key: toward_worse(r.get(key), 3, higher_is_better=True)  # noqa: E731
    lines = [
        "| batch | `jaxmlp train` | jaxmlp, epoch in one scan | `jaxmlp train` ÷ scan | PyTorch eager | "
        "`jaxmlp train` × eager |",
        "| --- " * 6 + "|",
    ]
    for batch in (64, 512):
        cli, scan = rows[("jaxmlp-cli", batch)], rows[("jaxmlp-scan", batch)]
        eager = rows.get(("torch-eager", batch))
        eager = (f"{eager['samples_per_s']:,.0f}/s", ratio(cli, "vs_torch_eager") + "x") if eager else ("—", "—")
        lines.append(
            f"| {batch} | {cli['samples_per_s']:,.0f}/s | {scan['samples_per_s']:,.0f}/s | "
            f"{ratio(cli, 'vs_jaxmlp_scan')} | {eager[0]} | {eager[1]} |"
        )
    return "\n".join(lines)


def seed_summary(results: dict) -> str:
    """The summary's sentence on the learner's own comparison: `jaxmlp train` against the seed's PyTorch loop."""
    rows = {r["system"]: r for r in results["rows"]}
    cli, seed = rows["jaxmlp train"], rows["seed PyTorch loop"]
    return (
        f"`jaxmlp train` against the seed's PyTorch loop on the same IDX files ({results['data_dir']}), batch "
        f"{results['batch']}, {results['epochs']} epochs each, best of {results['rounds']} rounds, median of epochs "
        f"2–{results['epochs']}\n(`{results['command']}`, results in `benchmarks/results/cli_vs_seed/`): "
        f"{cli['samples_per_s']:,.0f} against {seed['samples_per_s']:,.0f} samples/s, "
        f"{toward_worse(results['ratio'], 3, higher_is_better=True)}x."
    )


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
    """Each summary block, by what it shows (the seed comparison once its results are committed)."""
    shown = {
        "measured here": measured_here(load("measured_here"), load("tracer_mnist")),
        "throughput": throughput_summary(load("throughput")),
        "jaxmlp train": cli_summary(load("throughput", "throughput_cli")),
    }
    if os.path.exists(os.path.join(RESULTS, "cli_vs_seed", "cli_vs_seed.json")):
        shown["jaxmlp train vs the seed loop"] = seed_summary(load("cli_vs_seed"))
    return {**shown, "gpu": gpu_summary(load("throughput", "throughput_h100"))}


def main() -> None:
    for name, text in blocks().items():
        print(f"<!-- {name} -->\n{text}\n")


if __name__ == "__main__":
    main()
