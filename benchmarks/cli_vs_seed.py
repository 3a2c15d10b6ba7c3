"""`jaxmlp train` against the user's own PyTorch loop, on the same IDX files, in one run.

    python -m benchmarks.cli_vs_seed --data-dir DIR            # 5 epochs each, 2 interleaved rounds
    python -m benchmarks.cli_vs_seed --data-dir DIR --quick    # 2 epochs, 1 round (CI, tiny data)

The seed loop is `benchmarks/torch_reference.seed_loop`, the user's notebook as a script (784-128-64-10, Adam
1e-3, a shuffling `DataLoader`), timed over its `for x, y in loader` pass of each epoch, in a process of its
own. `jaxmlp train` is the real command in a subprocess (`jaxmlp train --data-dir DIR --epochs N --batch-size B
--hidden 128,64 --no-figures --no-progress`); its speed is the `samples_per_second` of each epoch in the run's
metrics.jsonl, which times the epoch's training (shuffle, chunks, probe, loss checks) and not its evaluation,
as the seed loop's timing leaves out its test accuracy. `jaxmlp train` compiles before its first epoch, so no
epoch holds compilation; still, the first epoch of either system runs with cold caches and allocators, so each
system's speed is the median over epochs 2..N, every epoch kept in the JSON. Systems alternate over `--rounds`
and each keeps its best round; the ratio is jaxmlp train's samples/s over the seed loop's. Both run in the
environment the user has (no malloc tuning), one after the other, never at once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import (
    arguments,
    base_parser,
    command_line,
    die_with_parent,
    machine,
    output_dir,
    run_worker,
    write_outputs,
)
from benchmarks.throughput import toward_worse

SYSTEMS = ("seed PyTorch loop", "jaxmlp train")
NO_TORCH = "torch is not installed: pip install torch==2.13.0 to time the seed loop"


def seed_worker(data_dir: str, epochs: int, batch: int) -> dict:
    """The seed loop in this process: per epoch, training samples per second and test accuracy."""
    try:
        from benchmarks.torch_reference import seed_loop
    except ImportError:
        raise SystemExit(NO_TORCH) from None
    from jaxmlp.data.datasets import load_dataset

    ds = load_dataset(data_dir=data_dir, normalization="standardize", log=lambda msg: None)
    rows = [
        {"epoch": k + 1, "samples_per_second": len(ds.y_train) / train_s, "test_accuracy": acc}
        for k, (train_s, acc, _) in enumerate(seed_loop(ds, epochs, batch))
    ]
    return {"epochs": rows, "train_samples": len(ds.y_train)}


def cli_run(data_dir: str, epochs: int, batch: int) -> dict:
    """`jaxmlp train` as a user types it, in a fresh process; its metrics.jsonl, epoch by epoch."""
    with tempfile.TemporaryDirectory(prefix="cli_vs_seed_") as tmp:
        run = os.path.join(tmp, "run")
        cmd = [sys.executable, "-m", "jaxmlp", "train", "--data-dir", data_dir, "--epochs", str(epochs)]
        cmd += ["--batch-size", str(batch), "--hidden", "128,64", "--no-figures", "--no-progress", "--out", run]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=die_with_parent)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["jaxmlp train failed"])[-1]}
        with open(os.path.join(run, "metrics.jsonl")) as f:
            metrics = [json.loads(line) for line in f if line.strip()]
    rows = [
        {"epoch": m["epoch"], "samples_per_second": m["samples_per_second"], "test_accuracy": m["test_accuracy"]}
        for m in metrics
    ]
    return {"epochs": rows, "command_seconds": wall}


def summarize(result: dict) -> dict:
    """The median, min and max samples/s over epochs 2..N (all of them when there is only one)."""
    if "error" in result:
        return result
    timed = result["epochs"][1:] or result["epochs"]
    speeds = [r["samples_per_second"] for r in timed]
    return {
        **result,
        "samples_per_s": statistics.median(speeds),
        "samples_per_s_min": min(speeds),
        "samples_per_s_max": max(speeds),
        "epochs_timed": [r["epoch"] for r in timed],
        "test_accuracy": result["epochs"][-1]["test_accuracy"],
    }


def best_rounds(data_dir: str, epochs: int, batch: int, rounds: int) -> dict[str, dict]:
    """Each system's best round (highest median samples/s), the two alternating round by round."""
    best: dict[str, dict] = {}
    for round_ in range(rounds):
        for system in SYSTEMS:
            print(f"round {round_ + 1}/{rounds} {system}", file=sys.stderr, flush=True)
            if system == "jaxmlp train":
                r = cli_run(data_dir, epochs, batch)
            else:
                args = ["--data-dir", data_dir, "--epochs", str(epochs), "--batch-size", str(batch)]
                r = run_worker("benchmarks.cli_vs_seed", args)
            r = {"system": system, **summarize(r)}
            if system not in best or r.get("samples_per_s", 0) > best[system].get("samples_per_s", 0):
                best[system] = r
    return best


def ratio(rows: dict[str, dict]) -> float | None:
    seed, cli = rows["seed PyTorch loop"], rows["jaxmlp train"]
    if "samples_per_s" in seed and "samples_per_s" in cli:
        return cli["samples_per_s"] / seed["samples_per_s"]
    return None


def markdown_table(results: dict) -> str:
    lines = [
        "| system | samples/s (median, epochs timed) | min–max | every epoch's samples/s | test accuracy, last epoch |",
        "|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        if "error" in r:
            lines.append(f"| {r['system']} | {r['error']} | | | |")
            continue
        every = ", ".join(f"{e['samples_per_second']:,.0f}" for e in r["epochs"])
        timed = f"{r['epochs_timed'][0]}–{r['epochs_timed'][-1]}" if len(r["epochs_timed"]) > 1 else "1"
        lines.append(
            f"| {r['system']} | {r['samples_per_s']:,.0f} (epochs {timed}) | "
            f"{r['samples_per_s_min']:,.0f}–{r['samples_per_s_max']:,.0f} | {every} | {r['test_accuracy']:.4f} |"
        )
    if results["ratio"] is None:
        return "\n".join(lines) + "\n\n`jaxmlp train` ÷ the seed's PyTorch loop: not measured (a system failed).\n"
    shown = toward_worse(results["ratio"], 3, higher_is_better=True)
    text = (
        f"\n\n`jaxmlp train` ÷ the seed's PyTorch loop, samples/s: {shown}x "
        f"(batch {results['batch']}, {results['epochs']} epochs each, best of {results['rounds']} rounds; "
        f"load average {results['loadavg_start']} at the start, {results['loadavg_end']} at the end)."
    )
    return "\n".join(lines) + text + "\n"


def chart(results: dict):
    import matplotlib.pyplot as plt

    from jaxmlp.show import plots

    with plots.style():
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in results["rows"]:
            if "epochs" in r:
                epochs = [e["epoch"] for e in r["epochs"]]
                ax.plot(epochs, [e["samples_per_second"] for e in r["epochs"]], "o-", label=r["system"])
        ax.set(xlabel="epoch", ylabel="training samples / second", ylim=(0, None))
        ax.set_title(f"jaxmlp train vs the seed's PyTorch loop, batch {results['batch']}\n{results['data_dir']}")
        ax.legend()
        fig.tight_layout()
    return fig


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def parser():
    p = base_parser("cli_vs_seed", __doc__)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # internal: the seed loop
    p.add_argument("--data-dir", required=True, help="folder of IDX files (e.g. full Fashion-MNIST)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per system and round (default 5, quick 2)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of both (default 64)")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds, best kept (default 2, quick 1)")
    return p


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = parser()
    args = p.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 5)
    if args.worker:
        print(json.dumps(seed_worker(args.data_dir, epochs, args.batch_size)))
        return
    if not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir}: no such folder")
    if epochs < 2 or args.batch_size < 1:
        p.error("--epochs must be 2 or more (the first is not timed) and --batch-size 1 or more")
    rounds = args.rounds or (1 if args.quick else 2)
    start = loadavg()
    rows = best_rounds(args.data_dir, epochs, args.batch_size, rounds)
    results = {
        "machine": machine(),
        "command": command_line("cli_vs_seed", argv),
        "data_dir": args.data_dir,
        "epochs": epochs,
        "batch": args.batch_size,
        "rounds": rounds,
        "loadavg_start": start,
        "loadavg_end": loadavg(),
        "rows": [rows[s] for s in SYSTEMS],
        "ratio": ratio(rows),
    }
    out = output_dir(args, "cli_vs_seed")
    for path in write_outputs(out, "cli_vs_seed", results, markdown_table(results), chart(results)):
        print(path)
    if results["ratio"] is not None:
        print(f"jaxmlp train ÷ seed PyTorch loop: {toward_worse(results['ratio'], 3, True)}x")


if __name__ == "__main__":
    main()
