"""Seconds from `jaxmlp train --dataset digits` to its first epoch line: this tree against another, side by side.

    git worktree add --detach /tmp/jaxmlp-base 4c706a4
    python -m benchmarks.first_epoch_latency --baseline /tmp/jaxmlp-base --repeats 7

Each repeat starts `python -m jaxmlp train --dataset digits --epochs 1 --no-progress --no-figures` in fresh
processes, with this tree's code and with the baseline tree's (PYTHONPATH picks the tree; the Python and its
packages are the same), in alternating order, and stamps the first output line that starts with `epoch`.
Each tree runs twice in an empty $XDG_CACHE_HOME of its own: `cold` is the first run (nothing cached: a user's
very first command), `warm` the second (XLA's compiled programs cached, where the tree caches them).
Alternating puts both trees under about the same machine load, so the comparison is each repeat's ratio,
current / baseline, and their median (with the lowest and highest); the seconds themselves depend on the
machine and how busy it is.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile

from benchmarks.common import arguments, base_parser, command_line, first, machine, output_dir, stamped_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cold_and_warm(tree: str) -> dict[str, float]:
    """Seconds to the first epoch line of two runs from `tree` sharing one cache folder, empty at first."""
    with tempfile.TemporaryDirectory() as cache:
        return {"cold": seconds_to_first_epoch(tree, cache), "warm": seconds_to_first_epoch(tree, cache)}


def seconds_to_first_epoch(tree: str, cache: str) -> float:
    """Start `jaxmlp train` from `tree` in a fresh process; seconds until it prints its first epoch line."""
    with tempfile.TemporaryDirectory() as tmp:  # the working folder too, so that `-m jaxmlp` finds only `tree`
        env = {**os.environ, "PYTHONPATH": tree, "XDG_CACHE_HOME": cache}
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        return first(stamped_run(env, os.path.join(tmp, "run"), "--dataset", "digits", cwd=tmp), "epoch")


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = base_parser("first_epoch_latency", __doc__, "pairs of fresh-process runs (default 7; --quick: 1)")
    p.add_argument("--baseline", required=True, help="a checkout of the code to compare against (git worktree add)")
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 7)
    runs = []
    for i in range(repeats):
        order = [("current", ROOT), ("baseline", args.baseline)][:: 1 if i % 2 == 0 else -1]
        runs.append({name: cold_and_warm(tree) for name, tree in order})
        print(f"repeat {i + 1}/{repeats}: {runs[-1]}", flush=True)
    median = {
        name: {start: statistics.median(r[name][start] for r in runs) for start in ("cold", "warm")}
        for name in ("current", "baseline")
    }
    baseline_commit = subprocess.run(
        ["git", "-C", args.baseline, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    results = {
        "command": command_line("first_epoch_latency", argv),
        "machine": machine(),
        "baseline_commit": baseline_commit,
        "runs": runs,
        "median_s": median,
        "ratios": {start: [r["current"][start] / r["baseline"][start] for r in runs] for start in ("cold", "warm")},
    }
    results["ratio"] = {start: statistics.median(ratios) for start, ratios in results["ratios"].items()}
    out = output_dir(args, "first_epoch_latency")
    from jaxmlp.files import write_json

    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "first_epoch_latency.json"), results)
    for start in ("cold", "warm"):
        print(
            f"{start}: start to first epoch line, median of {repeats}: current {median['current'][start]:.2f} s, "
            f"baseline ({baseline_commit}) {median['baseline'][start]:.2f} s; current / baseline, median of the "
            f"repeats {results['ratio'][start]:.3f} (range {min(results['ratios'][start]):.3f}-"
            f"{max(results['ratios'][start]):.3f})"
        )


if __name__ == "__main__":
    main()
