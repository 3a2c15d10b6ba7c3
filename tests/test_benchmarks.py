"""Every benchmark's --quick mode runs and writes its JSON, markdown table and PNG chart."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT


def bench(name, *args, timeout=180):
    """`python -m benchmarks.NAME ARGS` from the repository root, as benchmarks/README.md runs them."""
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def run_quick(name, tmp_path, *extra):
    r = bench(name, "--quick", "--out", tmp_path, *extra, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    table = next(line for line in (tmp_path / f"{name}.md").read_text().splitlines() if line.startswith("|"))
    assert table in r.stdout  # the run prints its table, not only the paths it wrote
    for ext in ("json", "md", "png"):
        assert os.path.getsize(tmp_path / f"{name}.{ext}") > 200, ext
    results = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["machine"]["cores"] >= 1 and "jax" in results["machine"]["versions"]
    # the command line recorded is the one that reproduces the result
    assert results["command"] == " ".join(["python -m benchmarks." + name, "--quick", "--out", str(tmp_path), *extra])
    return results


def matmul_flops(hidden, batch: int) -> int:
    """2·m·n·k per product: forward and weight gradient of every layer, input gradient of all but the first."""
    sizes = [784, *hidden, 10]
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 2 * batch * (2 * weights + weights - sizes[0] * sizes[1])


# One quick run of every system but PyTorch's two serves both tests below.
THROUGHPUT_SYSTEMS = ("jaxmlp-scan", "jaxmlp-cli", "jaxmlp-step", "tracer", "numpy", "matmul-floor")


@pytest.fixture(scope="module")
def throughput(tmp_path_factory):
    out = tmp_path_factory.mktemp("throughput")
    return out, run_quick("throughput", out, "--systems", ",".join(THROUGHPUT_SYSTEMS))


def test_throughput_quick(throughput):
    tmp_path, results = throughput
    rows = {(r["system"], r["batch"]): r for r in results["rows"]}
    assert set(rows) == {(s, b) for s in THROUGHPUT_SYSTEMS for b in (64, 512)}
    peak = results["roofline"]["flops_per_s"]
    for (system, batch), r in rows.items():
        assert "error" not in r, r
        assert 0 < r["samples_per_s_min"] <= r["samples_per_s"] <= r["samples_per_s_max"]
        assert r["samples_per_s"] == pytest.approx(batch * 1e3 / r["step_ms"], rel=1e-9)  # one median, two units
        assert r["epoch_ms"] == pytest.approx(60_000 * 1e3 / r["samples_per_s"], rel=1e-9)
        assert r["step_time_vs_numpy"] == pytest.approx(r["step_ms"] / rows[("numpy", batch)]["step_ms"])
        if system in ("jaxmlp-scan", "jaxmlp-step", "matmul-floor"):  # XLA's FLOP count against the roofline
            achieved = r["xla_flops_per_step"] * r["samples_per_s"] / batch
            if "mfu" in r:
                assert 0 < r["mfu"] <= 1.0 and r["mfu"] == pytest.approx(achieved / peak)
            else:  # only when the roofline, timed on a loaded machine, came out below what a system reached
                assert achieved > peak and "above the measured peak" in r["mfu_missing"]
        else:
            assert "mfu" not in r and "mfu_missing" not in r
    for batch in (64, 512):
        # The floor is the step's matrix products alone (plus the scaled subtraction, 2 FLOPs a weight):
        # XLA counts exactly those, and a full step has a few percent more.
        floor, step = rows[("matmul-floor", batch)], rows[("jaxmlp-scan", batch)]
        assert floor["xla_flops_per_step"] == pytest.approx(matmul_flops((128, 64), batch), rel=0.01)
        assert 0.9 * step["xla_flops_per_step"] < floor["xla_flops_per_step"] <= step["xla_flops_per_step"]
    assert results["roofline"]["flops_per_s"] > 1e9
    table = (tmp_path / "throughput.md").read_text()
    assert "| 784-128-64-10 | 64 | numpy |" in table and "| 1.000 |" in table


def test_throughput_quick_times_the_cli_epoch_loop_against_the_scan(throughput):
    from benchmarks.throughput import toward_worse

    tmp_path, results = throughput
    rows = {(r["system"], r["batch"]): r for r in results["rows"]}
    table = (tmp_path / "throughput.md").read_text()
    shown = []
    for batch in (64, 512):
        cli, scan = rows[("jaxmlp-cli", batch)], rows[("jaxmlp-scan", batch)]
        assert "error" not in cli, cli
        assert cli["chunk_steps"] == min(50, 6_400 // batch)  # the CLI's own chunking of a --quick epoch
        assert cli["vs_jaxmlp_scan"] == pytest.approx(cli["samples_per_s"] / scan["samples_per_s"])
        assert 0 < cli["vs_jaxmlp_scan"] < 10 and scan["vs_jaxmlp_scan"] == 1.0
        shown.append(f"{toward_worse(cli['vs_jaxmlp_scan'], 3, True)} (784-128-64-10, batch {batch})")
    assert f"jaxmlp-scan, samples/s: {', '.join(shown)}." in table


def test_numpy_baseline_gradients_equal_jax_grad():
    import jax
    import jax.numpy as jnp
    import optax

    from benchmarks.throughput import numpy_init, numpy_loss_and_grads

    rng = np.random.default_rng(1)
    params = [p.astype(np.float64) for p in numpy_init((16, 8), rng)]
    x, y = rng.standard_normal((32, 784)), rng.integers(0, 10, 32)
    loss, grads = numpy_loss_and_grads(params, x, y)

    def reference(ps):
        h = x
        for k in range(len(ps) // 2):
            h = h @ ps[2 * k].T + ps[2 * k + 1]
            h = jax.nn.relu(h) if k < len(ps) // 2 - 1 else h
        return optax.softmax_cross_entropy_with_integer_labels(h, y).mean()

    with jax.enable_x64(True):
        ref_loss, ref_grads = jax.value_and_grad(reference)([jnp.asarray(p) for p in params])
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    assert len(grads) == len(ref_grads) == 6
    for g, ref in zip(grads, ref_grads):
        assert g.shape == ref.shape
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-14)


def test_numpy_baseline_adam_equals_optax():
    import jax
    import jax.numpy as jnp
    import optax

    from benchmarks.throughput import numpy_adam

    rng = np.random.default_rng(2)
    params = [rng.standard_normal((5, 3)), rng.standard_normal(5)]
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    grads = [[rng.standard_normal(p.shape) * 10.0**-k for p in params] for k in range(6)]  # shrinking: v matters
    with jax.enable_x64(True):
        tx = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)
        theirs = [jnp.asarray(p) for p in params]
        state = tx.init(theirs)
        for t, g in enumerate(grads, start=1):
            numpy_adam(params, g, m, v, t)
            updates, state = tx.update([jnp.asarray(a) for a in g], state)
            theirs = optax.apply_updates(theirs, updates)
    for ours, ref in zip(params, theirs):
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["time_to_accuracy", "scaling", "tracer_mnist", "measured_here"])
def test_other_benchmarks_quick(tmp_path, name):
    results = run_quick(name, tmp_path)
    assert results["rows"] and not [r for r in results["rows"] if "error" in r], results["rows"]
    if name == "time_to_accuracy":
        assert results["rows"][0]["median_seconds"] > 0
    if name == "scaling":
        assert [r["devices"] for r in results["rows"]] == [1, 2]
        assert all(r["samples_per_s"] > 0 for r in results["rows"]) and results["rows"][0]["relative"] == 1.0
    if name == "measured_here":
        (row,) = results["rows"]
        assert row["epochs"] == 2 and row["seconds"] > 0 and 0.5 < row["metrics"]["test_accuracy"] <= 1
        assert (
            "| digits, 2 epochs | `jaxmlp train --dataset digits --epochs 2` |" in (tmp_path / f"{name}.md").read_text()
        )
    if name == "tracer_mnist":
        assert results["rows"][-1]["test_accuracy"] > 0.8


@pytest.mark.slow
def test_bounded_waits_quick(tmp_path):
    results = run_quick("bounded_waits", tmp_path)
    rows = {r["case"]: r for r in results["rows"]}
    assert set(rows) == {
        "probe, port where nothing listens",
        "probe, silent socket",
        "probe, hanging lookup",
        "offline fallback to digits",
        "TFDS lookup, hanging",
        "slow-loris mirror",
    }
    assert rows["slow-loris mirror"]["bound_s"] == 1.0 and rows["TFDS lookup, hanging"]["bound_s"] == 0.5
    for case, r in rows.items():
        assert r["min_s"] <= r["seconds"] <= r["max_s"] and r["vs_bound"] == pytest.approx(r["seconds"] / r["bound_s"])
        if case != "probe, port where nothing listens":  # refused at once; every other wait ends only at its bound
            assert r["seconds"] >= 0.99 * r["bound_s"], r
    assert 0 < results["idx"]["seconds"] and 0 < results["idx"]["peak_traced_bytes"] < 1 << 20


def test_quick_runs_never_replace_the_committed_results():
    from argparse import Namespace

    from benchmarks.common import output_dir

    assert output_dir(Namespace(out=None, quick=False), "throughput") == os.path.join(
        "benchmarks", "results", "throughput"
    )
    assert output_dir(Namespace(out=None, quick=True), "throughput") == os.path.join(
        "benchmarks", "results", "quick", "throughput"
    )
    assert output_dir(Namespace(out="elsewhere", quick=True), "throughput") == "elsewhere"


def test_unknown_system_is_a_one_line_error_and_writes_nothing(tmp_path):
    r = bench("throughput", "--quick", "--systems", "jaxmlp-scan,bogus", "--out", tmp_path)
    assert r.returncode == 2
    assert "unknown bogus; choose from jaxmlp-scan" in r.stderr.splitlines()[-1]
    assert not list(tmp_path.iterdir())
    r = bench("throughput", "--quick", "--mlps", "128,64/wide", "--out", tmp_path)
    assert r.returncode == 2 and "error: --mlps '128,64/wide': hidden sizes" in r.stderr.splitlines()[-1]
    assert not list(tmp_path.iterdir())


def test_mfu_peak_is_the_datasheet_on_a_known_gpu_and_the_measured_roofline_elsewhere():
    from benchmarks.throughput import peak_flops

    h100 = {"flops_per_s": 1.3e14, "n": 2048, "platform": "gpu", "device_kind": "NVIDIA H100 80GB HBM3"}
    assert peak_flops(h100, "fp32") == (495e12, "H100 datasheet, dense TF32")
    assert peak_flops(h100, "bf16")[0] == 989e12
    cpu = {"flops_per_s": 2.07e11, "n": 2048, "platform": "cpu", "device_kind": "cpu"}
    assert peak_flops(cpu, "fp32") == (2.07e11, "measured 2048² fp32 `jnp.dot`")
    unknown_gpu = {**h100, "device_kind": "NVIDIA GeForce RTX 4090"}
    assert peak_flops(unknown_gpu, "fp32")[0] == 1.3e14


def test_throughput_chart_keeps_its_title_inside_and_its_legend_off_the_bars():
    import matplotlib.pyplot as plt

    from benchmarks.throughput import chart

    systems = ("jaxmlp-scan", "jaxmlp-step", "torch-eager", "tracer", "numpy", "matmul-floor")
    rows = [
        {"system": s, "mlp": "784-128-64-10", "batch": b, "samples_per_s": 1e5 * (k + 1)}
        for k, s in enumerate(systems)
        for b in (64, 512)
    ]
    fig = chart(rows, "Intel(R) Xeon(R) Platinum 8480C with a long model name, 2 cores")
    fig.canvas.draw()
    renderer, ax = fig.canvas.get_renderer(), fig.axes[0]
    inside = fig.bbox
    title = ax.title.get_window_extent(renderer)
    assert inside.x0 <= title.x0 and title.x1 <= inside.x1 and title.y1 <= inside.y1, (title, inside)
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x1 <= inside.x1
    bars = [p.get_window_extent(renderer) for p in ax.patches]
    assert not any(legend.overlaps(bar) for bar in bars)
    plt.close(fig)


def test_mfu_is_never_above_one():
    from benchmarks.throughput import add_ratios, mfu_text

    roof = {"flops_per_s": 1e11, "n": 2048, "platform": "cpu", "device_kind": "cpu"}
    fast = {"system": "jaxmlp-scan", "mlp": "m", "batch": 64, "samples_per_s": 64e3, "xla_flops_per_step": 2e8}
    slow = {**fast, "batch": 512, "samples_per_s": 512e3, "xla_flops_per_step": 1e5}
    add_ratios([fast, slow], roof)
    assert "mfu" not in fast and mfu_text(fast).startswith("not measurable")  # 2e11 FLOP/s against a peak of 1e11
    assert slow["mfu"] == pytest.approx(0.001) and mfu_text(slow) == "0.1%"


def test_mnist_mini_is_built_from_the_recorded_rows_and_checked(tmp_path):
    """benchmarks.mnist_mini takes the recorded rows of a 785-column CSV, checks their hashes, writes IDX."""
    import gzip
    import hashlib

    from benchmarks.mnist_mini import FILES, mnist_mini_arrays, write_folder
    from jaxmlp.data.datasets import load_dataset

    rng = np.random.default_rng(0)
    table = np.concatenate([rng.integers(0, 256, (30, 784)), np.arange(30)[:, None] % 10], axis=1)
    csv = tmp_path / "five.csv.gz"
    with gzip.open(csv, "wt") as f:
        np.savetxt(f, table, fmt="%d", delimiter=",")
    rows = {"train": [5, 3, 20, 11, 0, 7], "test": [29, 14, 2]}
    pixels, labels = table[:, :784].astype(np.uint8).reshape(-1, 28, 28), table[:, 784].astype(np.uint8)
    digest = lambda a: hashlib.sha256(a.tobytes()).hexdigest()  # noqa: E731
    rows["sha256_of_pixels_and_labels"] = {
        name: digest((pixels if what == "images" else labels)[rows[split]]) for name, (split, what) in FILES.items()
    }
    write_folder(str(tmp_path / "mini"), mnist_mini_arrays(str(csv), rows))
    ds = load_dataset(data_dir=str(tmp_path / "mini"), log=lambda msg: None)
    assert np.array_equal(ds.y_train, labels[rows["train"]]) and np.array_equal(ds.y_test, labels[rows["test"]])
    assert sorted(os.listdir(tmp_path)) == ["five.csv.gz", "mini"]  # no staging folder left

    rows["train"] = [6, 3, 20, 11, 0, 7]  # not the rows the hashes were taken of
    with pytest.raises(SystemExit, match="does not give mnist-mini's train-images"):
        mnist_mini_arrays(str(csv), rows)
