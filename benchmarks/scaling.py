"""Data-parallel throughput against device count (jaxmlp-scan, batch split over a 1-D mesh).

    python -m benchmarks.scaling            # 1, 2, 4, 8 devices; batch 512
    python -m benchmarks.scaling --quick    # 1, 2 devices (CI)

On a GPU/TPU host the devices are real. On a CPU host each count runs in a fresh process with
XLA_FLAGS=--xla_force_host_platform_device_count=N: N virtual devices sharing the same cores, so
the numbers measure the cost of the sharded program and its all-reduce, not a speed-up.
"""

from __future__ import annotations

import os
import sys

from benchmarks.common import (
    STEADY_MALLOC,
    arguments,
    base_parser,
    command_line,
    machine,
    output_dir,
    run_worker,
    write_outputs,
)


def measure(devices: int, hidden: str, batch: int, steps: int, repeats: int, cpu: bool) -> dict:
    """jaxmlp-scan's throughput on `devices` devices: throughput's own worker, in a fresh process."""
    env = dict(STEADY_MALLOC)
    if cpu:  # N virtual devices: an XLA flag read when jax initializes, so in the worker's environment
        flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
        env["XLA_FLAGS"] = flags.strip()
    args = ["--system", "jaxmlp-scan", "--hidden", hidden, "--batch", str(batch), "--samples", str(steps * batch)]
    args += ["--steps", str(steps), "--repeats", str(repeats), "--devices", str(devices)]
    return run_worker("benchmarks.throughput", args, env=env)


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = base_parser(
        "scaling", __doc__, "timed calls per device count after the warm-up, median reported (default 3, quick 2)"
    )
    p.add_argument("--hidden", default="128,64", help="hidden layer sizes, comma-separated (default 128,64)")
    p.add_argument("--batch", type=int, default=512, help="global batch, split over the devices (default 512)")
    args = p.parse_args(argv)
    import jax

    cpu = jax.devices()[0].platform == "cpu"
    counts = [1, 2] if args.quick else ([1, 2, 4, 8] if cpu else [n for n in (1, 2, 4, 8) if n <= jax.device_count()])
    steps = 20 if args.quick else 100
    repeats = args.repeats or (2 if args.quick else 3)
    rows = []
    for n in counts:
        print(f"{n} device(s) ...", file=sys.stderr, flush=True)
        rows.append({"devices": n, **measure(n, args.hidden, args.batch, steps, repeats, cpu)})
    base = rows[0].get("samples_per_s")
    table = ["| devices | samples/s (median) | relative to 1 device | step ms |", "|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            table.append(f"| {r['devices']} | {r['error']} | | |")
            continue
        r["relative"] = r["samples_per_s"] / base if base else None
        relative = "—" if r["relative"] is None else f"{r['relative']:.3f}"
        table.append(f"| {r['devices']} | {r['samples_per_s']:,.0f} | {relative} | {r['step_ms']:.2f} |")
    note = (
        "\n\nCPU host: virtual devices share the same cores, so this is the overhead of sharding, not a speed-up."
        if cpu
        else ""
    )
    results = {
        "machine": machine(),
        "command": command_line("scaling", argv),
        "virtual_cpu_devices": cpu,
        "batch": args.batch,
        "hidden": args.hidden,
        "rows": rows,
    }
    for path in write_outputs(
        output_dir(args, "scaling"), "scaling", results, "\n".join(table) + note, chart(rows, cpu)
    ):
        print(path)


def chart(rows, virtual: bool):
    import matplotlib.pyplot as plt

    from jaxmlp.show import plots

    ok = [r for r in rows if "samples_per_s" in r]
    with plots.style():
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([r["devices"] for r in ok], [r["samples_per_s"] for r in ok], marker="o", label="measured")
        if ok:
            ax.plot(
                [r["devices"] for r in ok],
                [ok[0]["samples_per_s"] * r["devices"] for r in ok],
                ls="--",
                color="gray",
                label="perfect scaling",
            )
        title = "data-parallel scaling" + ("\n(virtual CPU devices on the same cores)" if virtual else "")
        ax.set(xlabel="devices", ylabel="training samples / second", xscale="log", title=title)
        ax.minorticks_off()
        ax.set_xticks([r["devices"] for r in ok], [str(r["devices"]) for r in ok])
        ax.legend()
        fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
