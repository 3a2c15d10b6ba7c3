"""REQUIRE_TORCH=1 (set by .ci/run) turns a skipped test or test module into a failure, and a missing torch into an
error before any test runs: the PyTorch checks cannot silently vanish from CI."""

import os
import subprocess
import sys

from tests.helpers import ROOT

SKIPPING = """
import pytest

def test_skips():
    pytest.skip("no reason")

def test_passes():
    pass
"""


NEEDS_TORCH = """
import pytest

def test_needs_torch():
    pytest.importorskip("torch.nn")

def test_passes():
    pass
"""
STAND_IN = "__version__ = '0+stand-in'  # importable, so REQUIRE_TORCH=1 lets the session start\n"
BLOCKED = "raise ImportError('torch is blocked here')\n"


def run_pytest(tmp_path, path, require_torch: bool, torch: str = STAND_IN):
    """pytest with this project's conftest on PATH, in a subprocess. A planted `torch` package shadows the real one
    (installed or not), so the outcome depends only on what the test plants: a stand-in that imports, or a block."""
    planted = tmp_path / ("stand_in" if torch == STAND_IN else "block")
    (planted / "torch").mkdir(parents=True, exist_ok=True)
    (planted / "torch" / "__init__.py").write_text(torch)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(planted), ROOT]),
        "REQUIRE_TORCH": "1" if require_torch else "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-rs", str(path)],
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
    strict = run_pytest(tmp_path, tmp_path / "test_passing.py", require_torch=True, torch=BLOCKED)
    assert strict.returncode == 4, strict.stdout + strict.stderr
    assert "REQUIRE_TORCH=1 but torch is not installed" in strict.stderr
    assert run_pytest(tmp_path, tmp_path / "test_passing.py", require_torch=False, torch=BLOCKED).returncode == 0


def test_a_skip_for_want_of_torch_names_the_install_command(tmp_path):
    (tmp_path / "test_needs_torch.py").write_text(NEEDS_TORCH)
    # The stand-in has no `nn`: importing torch.nn raises ModuleNotFoundError, as with no torch installed.
    relaxed = run_pytest(tmp_path, tmp_path / "test_needs_torch.py", require_torch=False)
    assert relaxed.returncode == 0 and "1 passed, 1 skipped" in relaxed.stdout, relaxed.stdout
    assert "pip install torch==2.13.0" in relaxed.stdout, relaxed.stdout
    strict = run_pytest(tmp_path, tmp_path / "test_needs_torch.py", require_torch=True)
    assert strict.returncode == 1 and "pip install torch==2.13.0" in strict.stdout, strict.stdout
