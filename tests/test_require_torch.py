"""REQUIRE_TORCH=1 (set by .ci/run) turns a skipped test or test module into a failure, and a missing torch into an
error before any test runs: the PyTorch checks cannot silently vanish from CI."""

import os
import subprocess
import sys

from tests.test_cli import ROOT

SKIPPING = """
import pytest

def test_skips():
    pytest.skip("no reason")

def test_passes():
    pass
"""


def run_pytest(tmp_path, path, require_torch: bool, block_torch: bool = False):
    env = {**os.environ, "PYTHONPATH": ROOT, "REQUIRE_TORCH": "1" if require_torch else "0"}
    if block_torch:  # a `torch` package that cannot be imported shadows the real one
        (tmp_path / "block" / "torch").mkdir(parents=True, exist_ok=True)
        (tmp_path / "block" / "torch" / "__init__.py").write_text("raise ImportError('torch is blocked here')\n")
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "block"), ROOT])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skipped_test_fails_under_require_torch(tmp_path):
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    relaxed = run_pytest(tmp_path, tmp_path / "test_skipping.py", require_torch=False)
    assert relaxed.returncode == 0 and "1 passed, 1 skipped" in relaxed.stdout, relaxed.stdout
    strict = run_pytest(tmp_path, tmp_path / "test_skipping.py", require_torch=True)
    assert strict.returncode == 1 and "1 failed, 1 passed" in strict.stdout, strict.stdout
    assert "REQUIRE_TORCH=1: no test may skip here" in strict.stdout


def test_a_skipped_module_fails_under_require_torch(tmp_path):
    (tmp_path / "test_module.py").write_text("import pytest\npytest.importorskip('no_such_module')\n")
    strict = run_pytest(tmp_path, tmp_path / "test_module.py", require_torch=True)
    assert strict.returncode != 0 and "1 error" in strict.stdout, strict.stdout
    assert "REQUIRE_TORCH=1: no test may skip here (collection skipped" in strict.stdout


def test_a_missing_torch_stops_the_run_under_require_torch(tmp_path):
    (tmp_path / "test_passing.py").write_text("def test_passes():\n    pass\n")
    strict = run_pytest(tmp_path, tmp_path / "test_passing.py", require_torch=True, block_torch=True)
    assert strict.returncode == 4, strict.stdout + strict.stderr
    assert "REQUIRE_TORCH=1 but torch is not installed" in strict.stderr
    assert run_pytest(tmp_path, tmp_path / "test_passing.py", require_torch=False, block_torch=True).returncode == 0
