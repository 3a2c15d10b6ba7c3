"""Training throughput of the same MLP, the same data shape and Adam, in six systems and one reference.

    python -m benchmarks.throughput            # full: 784-128-64-10 and 784-1024-1024-10, batch 64 and 512
    python -m benchmarks.throughput --quick    # small: 784-128-64-10, 50 steps per call (CI)
    python -m benchmarks.throughput --systems jaxmlp-scan,jaxmlp-cli --steps 937 --mlps 128,64   # CLI ÷ scan

Systems: jaxmlp with a whole epoch in one `lax.scan`; `jaxmlp train`'s own epoch loop (`jaxmlp-cli`: chunks,
probe, losses checked on the host); jaxmlp with a jitted step called from Python;
PyTorch eager (the user's original way); `torch.compile`; tracer; hand-written NumPy. One reference,
`matmul-floor`, is not a trainer: the step's matrix products alone in one `lax.scan` (no softmax, no
optimizer, no gather), the ceiling any XLA:CPU version of this MLP can reach.
Each system runs in its own process, so its peak memory is its own. Every run: a warm-up call (which
includes compilation, reported separately), then `--repeats` timed calls of the same `--steps` optimizer
steps (jaxmlp-scan runs them as one `lax.scan`, as it runs an epoch); the median is reported with the
min-max spread. Systems are interleaved over `--rounds` and each keeps its best round, since a shared
machine's speed wanders. Every worker runs with glibc's mmap threshold fixed (`STEADY_MALLOC`;
`--default-malloc` to leave it alone): with the default, the NumPy baseline page-faults its large
temporaries in again every step and loses up to half its speed. MFU counts the FLOPs XLA's cost
analysis reports for one compiled step, against the peak: on a CPU this machine's measured fp32 matmul
roofline (a large `jnp.dot`, timed in every round, best kept), on a known GPU its datasheet's dense
tensor-core rate (TF32 for float32, which is what JAX's default precision runs float32 products at there;
BF16 with --bf16).
On a GPU, PyTorch eager runs on it too.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time

import numpy as np

from benchmarks.common import (
    STEADY_MALLOC,
    arguments,
    base_parser,
    command_line,
    machine,
    output_dir,
    peak_rss_mb,
    run_worker,
    timed_repeats,
    write_outputs,
)

# Dense tensor-core TFLOP/s from NVIDIA's datasheets (the sparse figures are twice these); the H200 is the
# H100 SXM's chip with more memory.
DATASHEET_TFLOPS = {"H100": {"fp32": 495, "bf16": 989}, "H200": {"fp32": 495, "bf16": 989}}
EPOCH = 60_000  # samples in an MNIST-sized epoch, for the epoch time each row reports
SYSTEMS = (
    "jaxmlp-scan",
    "jaxmlp-cli",
    "jaxmlp-step",
    "torch-eager",
    "torch-compile",
    "tracer",
    "numpy",
    "matmul-floor",
)
FEATURES, CLASSES = 784, 10


def data(samples: int):
    rng = np.random.default_rng(0)
    return rng.standard_normal((samples, FEATURES), dtype=np.float32), rng.integers(0, CLASSES, samples).astype(
        np.int32
    )


def xla_flops(compiled) -> float:
    """FLOPs of one call of a compiled function, as XLA's cost analysis counts them."""
    cost = compiled.cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost).get("flops")


# --- one system per function: returns (run_steps, compile_seconds, extra) -----------------------


def setup_jaxmlp(hidden, batch, x, y, scan: bool, devices: int | None = None, bf16: bool = False):
    import functools

    import jax
    import jax.numpy as jnp

    from jaxmlp.config import TrainConfig
    from jaxmlp.core.parallel import make_mesh, put_replicated
    from jaxmlp.core.train import epoch_permutation, init, make_train_chunk, train_step
    from jaxmlp.data.datasets import Dataset

    ds = Dataset("synthetic", x, y, x[:10], y[:10], (28, 28), CLASSES, 0.0)
    mesh = make_mesh(devices, batch) if devices else None
    config = TrainConfig(hidden=tuple(hidden), batch_size=batch, chunks_per_epoch=1, bf16=bf16).validate()
    program, state = init(config, ds, mesh)
    xs, ys = put_replicated((x, y), mesh)
    steps = program.steps_per_epoch
    perm = epoch_permutation(state.key, 0, len(y), steps, batch)
    one_step = jax.jit(functools.partial(train_step, program))
    flops = xla_flops(one_step.lower(state, xs[:batch], ys[:batch]).compile())
    if mesh is not None:
        flops *= len(mesh.devices.flat)  # cost analysis counts one device's share
    holder = {"state": state}
    t = time.perf_counter()
    if scan:
        chunk = make_train_chunk(program).lower(state, xs, ys, perm, jnp.int32(0)).compile()

        def run():
            holder["state"], stats = chunk(holder["state"], xs, ys, perm, jnp.int32(0))
            jax.block_until_ready(stats["loss"])
    else:

        def body(state, x, y, perm, i):
            idx = jax.lax.dynamic_slice_in_dim(perm, i * batch, batch)
            return train_step(program, state, x[idx], y[idx])

        step = jax.jit(body, donate_argnums=0).lower(state, xs, ys, perm, jnp.int32(0)).compile()

        def run():
            s = holder["state"]
            for i in range(steps):
                s, stats = step(s, xs, ys, perm, jnp.int32(i))
            jax.block_until_ready(stats["loss"])
            holder["state"] = s

    return run, time.perf_counter() - t, {"xla_flops_per_step": flops, "compute": "bf16" if bf16 else "fp32"}


def setup_jaxmlp_cli(hidden, batch, x, y):
    """`jaxmlp train`'s own epoch: `loop.prepare` compiles what the command compiles, and each call runs
    `loop.train_epoch` on it, as `jaxmlp train` does with its default settings (chunks of about 250 steps, the
    layer-statistics probe per chunk, every loss fetched and checked, a new shuffle every epoch, progress off as
    in a pipe): the number a user reads in metrics.jsonl, on the data every other system sees."""
    from jaxmlp.config import TrainConfig
    from jaxmlp.core.train import linear_kernels
    from jaxmlp.data.datasets import Dataset
    from jaxmlp.runs.loop import Position, Progress, StepLog, Totals, prepare, train_epoch

    ds = Dataset("synthetic", x, y, x[:1000], y[:1000], (28, 28), CLASSES, 0.0)
    config = TrainConfig(hidden=tuple(hidden), batch_size=batch).validate()
    t = time.perf_counter()
    compiled, state = prepare(config, ds, devices=None, eval_train=False)
    pos = Position(state, log=StepLog(list(linear_kernels(state.params))))
    bar = Progress(config.epochs, compiled.program.steps_per_epoch, enabled=False, verbose=False)

    def run():
        pos.batch, pos.totals = 0, Totals()
        train_epoch(compiled, pos, bar, stop=None, run=None)
        pos.epoch += 1

    return run, time.perf_counter() - t, {"compute": "fp32", "chunk_steps": compiled.program.chunk_steps}


def setup_matmul_floor(hidden, batch, x, y):
    """The eight matrix products of a training step (forward, weight and input gradients) and nothing else.

    Batches are contiguous slices, the "update" is a scaled subtraction XLA fuses into the weight gradient's
    consumer: what remains is XLA:CPU's matmul kernels on these shapes, so the gap between jaxmlp-scan
    and this row is all a real step can still win, and this row's MFU is the most any XLA version reaches.
    """
    import jax
    import jax.numpy as jnp

    sizes = [FEATURES, *hidden, CLASSES]
    keys = jax.random.split(jax.random.key(0), len(sizes) - 1)
    ws = [jax.random.normal(k, (a, b), jnp.float32) / math.sqrt(a) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]
    xs = jax.device_put(x)
    steps = len(x) // batch

    def step(ws, xs, i):
        acts = [jax.lax.dynamic_slice_in_dim(xs, i * batch, batch)]
        for w in ws:
            acts.append(acts[-1] @ w)
        g, grads = acts.pop(), []
        for layer in reversed(range(len(ws))):
            grads.append(acts[layer].T @ g)
            if layer:  # the input has no gradient, as in jaxmlp, torch and tracer
                g = g @ ws[layer].T
        return [w - 1e-9 * gw for w, gw in zip(ws, reversed(grads))]

    flops = xla_flops(jax.jit(step).lower(ws, xs, jnp.int32(0)).compile())
    t = time.perf_counter()
    epoch = jax.jit(lambda ws, xs: jax.lax.scan(lambda w, i: (step(w, xs, i), None), ws, jnp.arange(steps))[0])
    epoch = epoch.lower(ws, xs).compile()
    holder = {"ws": ws}

    def run():
        holder["ws"] = jax.block_until_ready(epoch(holder["ws"], xs))

    return run, time.perf_counter() - t, {"xla_flops_per_step": flops}


def setup_torch(hidden, batch, x, y, compiled: bool):
    import torch

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = [FEATURES, *hidden, CLASSES]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    model = torch.nn.Sequential(*layers).to(device)
    forward = torch.compile(model) if compiled else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(x).to(device), torch.from_numpy(y).long().to(device)
    perm = torch.randperm(len(y), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    steps = len(y) // batch

    def step(i):
        idx = perm[i * batch : (i + 1) * batch]
        loss = loss_fn(forward(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = time.perf_counter()
    step(0)  # compiles, for torch.compile
    sync()
    compile_s = time.perf_counter() - t

    def run():
        for i in range(steps):
            step(i)
        sync()  # CUDA runs asynchronously: the time counts finished work only

    return run, compile_s, {"device": device}


def setup_tracer(hidden, batch, x, y):
    import tracer
    import tracer.nn as tnn
    from tracer import optim

    tracer.manual_seed(0)
    sizes = [FEATURES, *hidden, CLASSES]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [tnn.Linear(a, b)] + ([tnn.ReLU()] if i < len(sizes) - 2 else [])
    model = tnn.Sequential(*layers)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = tnn.CrossEntropyLoss()
    perm = np.random.default_rng(0).permutation(len(y))
    steps = len(y) // batch

    def run():
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            loss = loss_fn(model(tracer.Tensor(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    return run, 0.0, {}


def numpy_init(hidden, rng: np.random.Generator) -> list[np.ndarray]:
    """PyTorch's Linear layout and init: per layer a weight (out, in) and a bias, both U(-1/√in, 1/√in)."""
    sizes = [FEATURES, *hidden, CLASSES]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(a)
        params += [
            rng.uniform(-bound, bound, (b, a)).astype(np.float32),
            rng.uniform(-bound, bound, b).astype(np.float32),
        ]
    return params


def numpy_loss_and_grads(params: list[np.ndarray], xb: np.ndarray, yb: np.ndarray):
    """Mean softmax cross-entropy of the ReLU MLP `params` on one batch, and its gradient, by hand.

    Backward: d loss / d logits = (softmax - one_hot) / batch; each layer's weight gradient is gᵀ·input, its bias
    gradient g summed over the batch, and g flows on through Wᵀ and the ReLU's mask (not into the images).
    """
    n_layers = len(params) // 2
    acts = [xb]
    for k in range(n_layers):
        z = acts[-1] @ params[2 * k].T + params[2 * k + 1]
        acts.append(np.maximum(z, 0) if k < n_layers - 1 else z)
    logits, rows = acts[-1], np.arange(len(yb))
    shifted = logits - logits.max(1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(1)
    loss = (np.log(total) - shifted[rows, yb]).mean()  # the loss, as every other system computes it
    g = e / total[:, None]
    g[rows, yb] -= 1
    g /= len(yb)
    grads = [None] * len(params)
    for k in reversed(range(n_layers)):
        grads[2 * k], grads[2 * k + 1] = g.T @ acts[k], g.sum(0)
        if k:
            g = (g @ params[2 * k]) * (acts[k] > 0)
    return loss, grads


def numpy_adam(params, grads, m, v, t: int, lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adam step `t` (from 1) in place: m, v the moment estimates; θ -= lr·m̂ / (√v̂ + ε) with the bias corrections."""
    c1, c2 = 1 - b1**t, 1 - b2**t
    for p, gr, mi, vi in zip(params, grads, m, v):
        mi *= b1
        mi += (1 - b1) * gr
        vi *= b2
        vi += (1 - b2) * gr * gr
        p -= (lr / c1) * mi / (np.sqrt(vi) / math.sqrt(c2) + eps)


def setup_numpy(hidden, batch, x, y):
    """Forward, backward and Adam written out by hand: the floor any Python autograd is measured against."""
    rng = np.random.default_rng(0)
    params = numpy_init(hidden, rng)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    perm = rng.permutation(len(y))
    steps = len(y) // batch
    t_step = [0]

    def run():
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            _, grads = numpy_loss_and_grads(params, x[idx], y[idx])
            t_step[0] += 1
            numpy_adam(params, grads, m, v, t_step[0])

    return run, 0.0, {}


def worker(
    system: str,
    hidden: list[int],
    batch: int,
    samples: int,
    repeats: int,
    steps: int,
    devices: int | None = None,
    bf16: bool = False,
) -> dict:
    """Time `steps` optimizer steps (drawn from a `samples` x 784 training set) of one system."""
    x, y = data(samples)
    x, y = x[: steps * batch], y[: steps * batch]  # every system sees exactly `steps` batches per timed call
    setup = {
        "jaxmlp-scan": lambda: setup_jaxmlp(hidden, batch, x, y, scan=True, devices=devices, bf16=bf16),
        "jaxmlp-cli": lambda: setup_jaxmlp_cli(hidden, batch, x, y),
        "jaxmlp-step": lambda: setup_jaxmlp(hidden, batch, x, y, scan=False),
        "torch-eager": lambda: setup_torch(hidden, batch, x, y, compiled=False),
        "torch-compile": lambda: setup_torch(hidden, batch, x, y, compiled=True),
        "tracer": lambda: setup_tracer(hidden, batch, x, y),
        "numpy": lambda: setup_numpy(hidden, batch, x, y),
        "matmul-floor": lambda: setup_matmul_floor(hidden, batch, x, y),
    }[system]
    run, compile_s, extra = setup()
    t = timed_repeats(run, repeats, warmup=1)
    sps = [steps * batch / s for s in t["all"]]
    return {
        "samples_per_s": steps * batch / t["median"],
        "samples_per_s_min": min(sps),
        "samples_per_s_max": max(sps),
        "step_ms": 1e3 * t["median"] / steps,
        "epoch_ms": 1e3 * EPOCH * t["median"] / (steps * batch),
        "compile_s": compile_s,
        "peak_mb": peak_rss_mb(),
        **extra,
    }


def roofline_worker(n: int = 2048, repeats: int = 10) -> dict:
    """fp32 matmul FLOP/s of this machine through XLA: the peak MFU is measured against."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    t = timed_repeats(lambda: dot(a, a).block_until_ready(), repeats, warmup=2)
    device = jax.devices()[0]
    return {"flops_per_s": 2 * n**3 / t["min"], "n": n, "platform": device.platform, "device_kind": device.device_kind}


def peak_flops(roof: dict, compute: str) -> tuple[float | None, str]:
    """The FLOP/s MFU is counted against, and where it comes from: a known GPU's datasheet, else the roofline."""
    if roof.get("platform") == "gpu":
        chip = next((c for c in DATASHEET_TFLOPS if c in roof.get("device_kind", "")), None)
        if chip:
            return DATASHEET_TFLOPS[chip][
                compute
            ] * 1e12, f"{chip} datasheet, dense {compute.replace('fp32', 'TF32').upper()}"
    return roof.get("flops_per_s"), f"measured {roof.get('n')}² fp32 `jnp.dot`"


def device_name(machine_info: dict) -> str:
    """What a chart names as the machine: the GPU if there is one, else the CPU and its cores."""
    gpus = [d.split(":", 1)[1] for d in machine_info.get("jax_devices", []) if d.startswith("gpu:")]
    return gpus[0] if gpus else f"{machine_info['cpu']}, {machine_info['cores']} cores"


def shown_name(row: dict) -> str:
    """A system's name in tables and charts, marked when it computed in bfloat16."""
    return row["system"] + (" (bf16)" if row.get("compute") == "bf16" else "")


def chart(rows: list[dict], where: str):
    import matplotlib.pyplot as plt

    from jaxmlp.show import plots

    configs = sorted({(r["mlp"], r["batch"]) for r in rows}, key=lambda c: (len(c[0]), c[0], c[1]))
    systems = [s for s in SYSTEMS if any(r["system"] == s and "samples_per_s" in r for r in rows)]
    with plots.style():
        fig, ax = plt.subplots(figsize=(max(7, 2.8 * len(configs)), 4.5))
        width = 0.8 / max(len(systems), 1)
        for k, system in enumerate(systems):
            vals = [
                next(
                    (
                        r.get("samples_per_s", np.nan)
                        for r in rows
                        if r["system"] == system and (r["mlp"], r["batch"]) == c
                    ),
                    np.nan,
                )
                for c in configs
            ]
            reference = system == "matmul-floor"  # a ceiling, not a trainer: drawn apart
            label = (
                "matmul-floor (XLA ceiling)"
                if reference
                else shown_name(next(r for r in rows if r["system"] == system))
            )
            ax.bar(
                np.arange(len(configs)) + k * width - 0.4 + width / 2,
                vals,
                width,
                label=label,
                **({"color": "0.8", "hatch": "//", "edgecolor": "0.5"} if reference else {}),
            )
        ax.set_xticks(range(len(configs)), [f"{m}\nbatch {b}" for m, b in configs])
        # The machine's name on a line of its own, so a long CPU name widens nothing; the legend beside the
        # bars, never over them.
        ax.set(yscale="log", ylabel="training samples / second (median)")
        ax.set_title(f"training throughput, Adam, same MLP\n{where}", wrap=True)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
    return fig


def parser() -> argparse.ArgumentParser:
    p = base_parser("throughput", __doc__, "timed calls after the warm-up, median reported (default 3, quick 2)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # internal: one measurement
    p.add_argument("--system", choices=SYSTEMS + ("roofline",), help="(internal, one measurement) the system to time")
    p.add_argument("--hidden", default="128,64", help="(internal) hidden layer sizes, comma-separated")
    p.add_argument("--batch", type=int, default=64, help="(internal) batch size")
    p.add_argument("--samples", type=int, default=60_000, help="(internal) training-set rows (x 784)")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per timed call (jaxmlp-scan: one scan)")
    p.add_argument("--devices", type=int, default=None, help="jaxmlp-scan: split batches over this many devices")
    p.add_argument("--bf16", action="store_true", help="jaxmlp-scan: bfloat16 compute (accelerators)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of: " + ", ".join(SYSTEMS))
    p.add_argument(
        "--default-malloc",
        action="store_true",
        help="run workers with glibc's default (dynamic) mmap threshold instead of a fixed high one",
    )
    p.add_argument(
        "--mlps",
        default=None,
        help="hidden sizes of the MLPs to time, '/' between MLPs (default: 128,64/1024,1024; quick: 128,64)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds per configuration; best kept (default: 2, quick: 1)",
    )
    return p


def run_as_worker(args: argparse.Namespace) -> None:
    """One measurement in this process, printed as one JSON line for `run_worker`."""
    if args.system == "roofline":
        print(json.dumps(roofline_worker()))
        return
    hidden = [int(h) for h in args.hidden.split(",")]
    result = worker(
        args.system, hidden, args.batch, args.samples, args.repeats or 3, args.steps, args.devices, args.bf16
    )
    print(json.dumps(result))


def best_of_rounds(systems, hidden, batch: int, plan: dict, env, roofs: list[dict]) -> dict[str, dict]:
    """Each system's fastest round on one MLP and batch size, systems interleaved round by round.

    This machine's speed wanders (other tenants); interleaving exposes every system to the same conditions.
    The roofline is measured in every round too (appended to `roofs`), so the best one, which MFU is counted
    against, saw the same conditions as the best rounds of the systems.
    """
    mlp = "-".join(map(str, (FEATURES, *hidden, CLASSES)))
    best: dict[str, dict] = {}
    for round_ in range(plan["rounds"]):
        roofs.append(run_worker("benchmarks.throughput", ["--system", "roofline"], env=env))
        for system in systems:
            if system == "torch-compile" and plan["quick"]:
                continue  # minutes of C++ compilation: full runs only
            print(f"round {round_ + 1}/{plan['rounds']} {system:14s} {mlp} batch {batch}", file=sys.stderr, flush=True)
            args = ["--system", system, "--hidden", ",".join(map(str, hidden)), "--batch", str(batch)]
            args += ["--samples", str(plan["samples"]), "--steps", str(min(plan["steps"], plan["samples"] // batch))]
            r = run_worker(
                "benchmarks.throughput", [*args, "--repeats", str(plan["repeats"]), *plan["forwarded"]], env=env
            )
            if system not in best or r.get("samples_per_s", 0) > best[system].get("samples_per_s", 0):
                best[system] = {"system": system, "mlp": mlp, "batch": batch, **r}
    return best


def add_ratios(rows: list[dict], roof: dict) -> None:
    """MFU for XLA systems; speed against PyTorch eager and jaxmlp-scan, step time against NumPy; same MLP and batch."""
    ok = {(r["system"], r["mlp"], r["batch"]): r for r in rows if "error" not in r}
    for (_, mlp, batch), r in ok.items():
        if flops := r.get("xla_flops_per_step"):
            peak, r["peak"] = peak_flops(roof, r.get("compute", "fp32"))
            achieved = flops * r["samples_per_s"] / batch
            if peak and achieved <= peak:
                r["mfu"] = achieved / peak
            elif peak:  # a roofline timed while other tenants held the cores is no roofline: say so, claim nothing
                r["mfu_missing"] = f"{achieved / 1e9:.1f} GFLOP/s is above the measured peak {peak / 1e9:.1f}"
        if base := ok.get(("torch-eager", mlp, batch)):
            r["vs_torch_eager"] = r["samples_per_s"] / base["samples_per_s"]
        if ref := ok.get(("numpy", mlp, batch)):
            r["step_time_vs_numpy"] = r["step_ms"] / ref["step_ms"]
        if scan := ok.get(("jaxmlp-scan", mlp, batch)):
            r["vs_jaxmlp_scan"] = r["samples_per_s"] / scan["samples_per_s"]


def toward_worse(value: float | None, decimals: int, higher_is_better: bool) -> str:
    """`value` rounded to `decimals` away from any bar it is held to: a speed-up or an MFU down, a cost ratio up.

    So a printed number never meets a bar the measured one misses (1.2039 prints as 1.204, not 1.20, under <= 1.2).
    """
    if value is None:
        return "—"
    scaled = round(value * 10**decimals, 6)  # float noise (1.2 * 1000 = 1200.0000000000002) is not a digit
    return f"{(math.floor if higher_is_better else math.ceil)(scaled) / 10**decimals:,.{decimals}f}"


def mfu_text(row: dict) -> str:
    if "mfu_missing" in row:
        return "not measurable: roofline timed too low"
    return "—" if "mfu" not in row else toward_worse(100 * row["mfu"], 1, higher_is_better=True) + "%"


def markdown_table(results: dict) -> str:
    """The results as benchmarks/README.md shows them: one row per MLP, batch and system, then the roofline."""
    table = [
        "| MLP | batch | system | samples/s (median) | min–max | 60k epoch ms | × torch eager | "
        "step time ÷ NumPy | compile s | peak MB | MFU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        if "error" in r:
            table.append(f"| {r['mlp']} | {r['batch']} | {r['system']} | {r['error']} | | | | | | | |")
            continue
        table.append(
            f"| {r['mlp']} | {r['batch']} | {shown_name(r)} | {r['samples_per_s']:,.0f} | "
            f"{r['samples_per_s_min']:,.0f}–{r['samples_per_s_max']:,.0f} | "
            f"{toward_worse(r.get('epoch_ms'), 1, higher_is_better=False)} | "
            f"{toward_worse(r.get('vs_torch_eager'), 3, higher_is_better=True)} | "
            f"{toward_worse(r.get('step_time_vs_numpy'), 3, higher_is_better=False)} | "
            f"{r['compile_s']:.2f} | {r['peak_mb']:.0f} | {mfu_text(r)} |"
        )
    roof = results["roofline"]
    text = (
        f"\n\nfp32 matmul roofline measured here: {roof.get('flops_per_s', float('nan')) / 1e9:.1f} GFLOP/s "
        f"({roof.get('n')}² `jnp.dot`, the best of 10 calls in each of {results.get('roofline_rounds', 2)} runs)."
    )
    peaks = sorted({r["peak"] for r in results["rows"] if "mfu" in r})
    text += f" MFU against: {'; '.join(peaks)}." if peaks else ""
    cli = [r for r in results["rows"] if "vs_jaxmlp_scan" in r and r["system"] == "jaxmlp-cli"]
    if cli:
        ratio = lambda r: toward_worse(r["vs_jaxmlp_scan"], 3, higher_is_better=True)
        shown = lambda r: f"{ratio(r)} ({r['mlp']}, batch {r['batch']})"
        ratios = ", ".join(map(shown, cli))
        text += f"\n\n`jaxmlp train`'s epoch loop (jaxmlp-cli) ÷ jaxmlp-scan, samples/s: {ratios}."
    return "\n".join(table) + text + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = arguments(argv)
    p = parser()
    args = p.parse_args(argv)
    if args.worker:
        run_as_worker(args)
        return
    systems = [s for s in args.systems.split(",") if s]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        p.error(f"--systems: unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(SYSTEMS)}")
    plan = {
        "quick": args.quick,
        "samples": 6_400 if args.quick else 60_000,
        "steps": 50 if args.quick else args.steps,
        "repeats": args.repeats or (2 if args.quick else 3),
        "rounds": args.rounds or (1 if args.quick else 2),
        # --bf16 and --devices reach the workers, where jaxmlp-scan uses them
        "forwarded": (["--bf16"] if args.bf16 else []) + (["--devices", str(args.devices)] if args.devices else []),
    }
    env = None if args.default_malloc else STEADY_MALLOC
    roofs, rows = [], []
    mlps = args.mlps or ("128,64" if args.quick else "128,64/1024,1024")
    if not re.fullmatch(r"[1-9]\d*(,[1-9]\d*)*(/[1-9]\d*(,[1-9]\d*)*)*", mlps):
        p.error(f"--mlps {mlps!r}: hidden sizes as positive integers, e.g. 128,64/1024,1024")
    for hidden in [tuple(int(h) for h in mlp.split(",")) for mlp in mlps.split("/")]:
        for batch in (64, 512):
            rows += best_of_rounds(systems, hidden, batch, plan, env, roofs).values()
    roof = max(roofs, key=lambda r: r.get("flops_per_s", 0))
    add_ratios(rows, roof)
    results = {
        "machine": machine(),
        "command": command_line("throughput", argv),
        "malloc": "glibc default" if args.default_malloc else STEADY_MALLOC,
        **{k: plan[k] for k in ("samples", "repeats", "rounds")},
        "steps_per_call": plan["steps"],
        "roofline": roof,
        "roofline_rounds": len(roofs),
        "rows": rows,
    }
    fig = chart(rows, device_name(results["machine"]))
    for path in write_outputs(output_dir(args, "throughput"), "throughput", results, markdown_table(results), fig):
        print(path)


if __name__ == "__main__":
    main()
