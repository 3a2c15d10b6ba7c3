"""Every benchmark's --quick mode runs and writes its JSON, markdown table and PNG chart."""

import json
import os

import pytest

from tests.test_cli import jaxmlp


def run_quick(name, tmp_path, *extra):
    r = jaxmlp("bench", name, "--quick", "--out", tmp_path, *extra, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for ext in ("json", "md", "png"):
        assert os.path.getsize(tmp_path / f"{name}.{ext}") > 200, ext
    results = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["machine"]["cores"] >= 1 and "jax" in results["machine"]["versions"]
    return results


def test_throughput_quick(tmp_path):
    systems = ("jaxmlp-scan", "jaxmlp-step", "tracer", "numpy", "matmul-floor")
    results = run_quick("throughput", tmp_path, "--systems", ",".join(systems))
    rows = {(r["system"], r["batch"]): r for r in results["rows"]}
    for system in systems:
        for batch in (64, 512):
            r = rows[(system, batch)]
            assert r["samples_per_s"] > 0 and r["samples_per_s_min"] <= r["samples_per_s"] <= r["samples_per_s_max"]
    assert 0 < rows[("jaxmlp-scan", 512)]["mfu"] < 1.5  # XLA's FLOP count against the measured matmul roofline
    # The floor is the step's matrix products alone: most of a step's FLOPs, never more of them.
    step, floor = rows[("jaxmlp-scan", 512)]["xla_flops_per_step"], rows[("matmul-floor", 512)]["xla_flops_per_step"]
    assert 0.9 * step < floor <= step
    assert results["roofline"]["flops_per_s"] > 1e9
    assert "| jaxmlp-scan |" in (tmp_path / "throughput.md").read_text()


@pytest.mark.parametrize("name", ["time_to_accuracy", "scaling", "tracer_mnist"])
def test_other_benchmarks_quick(tmp_path, name):
    results = run_quick(name, tmp_path)
    assert results["rows"]
    if name == "time_to_accuracy":
        assert results["rows"][0]["median_seconds"] > 0
    if name == "tracer_mnist":
        assert results["rows"][-1]["test_accuracy"] > 0.8


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
    r = jaxmlp("bench", "throughput", "--quick", "--systems", "jaxmlp-scan,bogus", "--out", tmp_path)
    assert r.returncode == 2
    assert "unknown bogus; choose from jaxmlp-scan" in r.stderr.splitlines()[-1]
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
