"""What every benchmark shares: machine facts, repeat-and-median timing, and the three output files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib import metadata


def machine() -> dict:
    """CPU model, cores, accelerator and library versions: enough to know what a number was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": python_build(), "versions": versions}
    try:
        import jax

        info["jax_devices"] = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    except Exception as e:  # noqa: BLE001 - a benchmark still runs without jax
        info["jax_devices"] = [f"unavailable ({e})"]
    return info


def python_build() -> str:
    """Version, executable and how libpython is linked: pure-Python code such as tracer runs slower on a
    shared-library interpreter (pyenv's default build) than on one with libpython linked in (Debian's);
    benchmarks/README.md has the numbers."""
    try:
        with open("/proc/self/maps") as f:
            linked = "shared libpython" if "libpython" in f.read() else "static libpython"
    except OSError:
        linked = "libpython linkage unknown"
    return f"{platform.python_version()} ({sys.executable}, {linked})"


def timed_repeats(fn, repeats: int, warmup: int = 1) -> dict:
    """Call `fn()` `warmup` times untimed, then `repeats` times; return median, min, max and all times (s)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "all": times}


# glibc serves blocks above its mmap threshold with fresh mmaps and unmaps them on free, so a loop that makes
# large temporaries can page-fault them in again on every step; which program suffers depends on the order
# of its allocations, not on its arithmetic. Fixing the threshold high makes every worker reuse memory alike.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(256 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


def die_with_parent() -> None:
    """`preexec_fn` of every worker: Linux sends it SIGTERM when the benchmark that started it dies (a SIGHUP or a
    kill included), so no worker outlives its benchmark (PR_SET_PDEATHSIG; elsewhere a no-op)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_worker(module: str, args: list[str], timeout: float = 1800, env: dict | None = None) -> dict:
    """Run `python -m module --worker ARGS` in a fresh process (its own memory peak); return its JSON result.

    env: variables added to this process's environment for the worker (e.g. `STEADY_MALLOC`).
    """
    proc = subprocess.run(
        [sys.executable, "-m", module, "--worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        preexec_fn=die_with_parent,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stamped_run(env: dict, out: str, *extra: str, cwd: str | None = None) -> list[tuple[float, str]]:
    """Run `jaxmlp train --epochs 1` in a fresh process; return (seconds since start, line) for each output line."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "jaxmlp", "train", "--epochs", "1", "--no-figures", "--no-progress", "--out", out]
    cmd += extra
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=die_with_parent
    )
    lines = [(time.perf_counter() - start, line.rstrip()) for line in proc.stdout]
    if proc.wait() != 0:
        raise SystemExit("jaxmlp train failed:\n" + "\n".join(line for _, line in lines))
    return lines


def first(lines: list[tuple[float, str]], prefix: str) -> float:
    """The time stamp of the first of `stamped_run`'s lines that starts with `prefix`."""
    return next(t for t, line in lines if line.startswith(prefix))


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def base_parser(name: str, description: str, repeats_help: str | None = None) -> argparse.ArgumentParser:
    """--quick and --out for every benchmark; --repeats for those that repeat something (`repeats_help` says what)."""
    p = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a small, fast version (what CI runs)")
    p.add_argument(
        "--out",
        default=None,
        help="folder for the JSON, markdown and PNG (default: benchmarks/results/NAME; "
        "with --quick, benchmarks/results/quick/NAME)",
    )
    if repeats_help:
        p.add_argument("--repeats", type=int, default=None, help=repeats_help)
    return p


def command_line(name: str, argv: list[str]) -> str:
    """The command that reproduces a result, as each results file records it."""
    return shlex.join(["python", "-m", f"benchmarks.{name}", *argv])


def arguments(argv: list[str] | None) -> list[str]:
    """A benchmark's `main(argv)` arguments: the given list (a test calling `main`), else the command line's."""
    return sys.argv[1:] if argv is None else list(argv)


def output_dir(args: argparse.Namespace, name: str) -> str:
    """Where a benchmark writes: --out, else benchmarks/results/NAME. A --quick run goes to
    benchmarks/results/quick/NAME, so it never replaces the full results committed beside the README."""
    return args.out or os.path.join("benchmarks", "results", *(["quick"] if args.quick else []), name)


def write_outputs(out: str, name: str, results: dict, table_md: str, fig) -> list[str]:
    """Write NAME.json, NAME.md and NAME.png under `out`; print the table, so a run shows what it measured."""
    from jaxmlp.files import write_atomic, write_json
    from jaxmlp.show.plots import save

    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, f"{name}.json"), os.path.join(out, f"{name}.md"), os.path.join(out, f"{name}.png")]
    write_json(paths[0], results)
    header = (
        f"# {name}\n\nMachine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"{', '.join(results['machine']['jax_devices'])}; "
        + ", ".join(f"{k} {v}" for k, v in results["machine"]["versions"].items())
        + f"; Python {results['machine']['python']}"
        + f"\n\nCommand: `{results['command']}`\n\n"
    )
    write_atomic(paths[1], header + table_md + "\n")
    print(table_md, flush=True)
    save(fig, paths[2])
    return paths
