"""Shared fixtures: small IDX datasets written by the tests themselves (no network, no ../shared), and the site.

Without torch, the PyTorch checks skip with a reason naming `pip install torch==2.13.0`. REQUIRE_TORCH=1 (set by
.ci/run) makes them impossible to lose: the session stops at once when torch cannot be imported, and any skipped
test, or test module, is reported as a failure.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from tests.helpers import ROOT, write_idx_dataset


@pytest.fixture
def idx_dir(tmp_path):
    return write_idx_dataset(tmp_path / "idx")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The HTML site the site tests read: $JAXMLP_SITE when set (CI builds it with `make docs`), else built once."""
    if os.environ.get("JAXMLP_SITE"):
        return Path(os.environ["JAXMLP_SITE"])
    out = tmp_path_factory.mktemp("site")
    sphinx = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going"]
    subprocess.run([*sphinx, os.path.join(ROOT, "docs"), str(out)], check=True)
    return out


REQUIRE_TORCH = os.environ.get("REQUIRE_TORCH") == "1"


def pytest_configure(config):
    if not REQUIRE_TORCH:
        return
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise pytest.UsageError(
            "REQUIRE_TORCH=1 but torch is not installed; install it with "
            "`.venv/bin/pip install torch==2.13.0` (or unset REQUIRE_TORCH to let the PyTorch tests skip)"
        ) from e


INSTALL_TORCH = "install it with `pip install torch==2.13.0` (the PyTorch parity checks need it)"


def _skip_is_failure(report, when: str) -> None:
    """A skip for want of torch says how to install it; under REQUIRE_TORCH=1 any skipped report becomes a failed
    one that says what skipped and why."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    if isinstance(report.longrepr, tuple) and "could not import 'torch" in report.longrepr[2]:
        path, line, reason = report.longrepr
        report.longrepr = (path, line, f"{reason}: {INSTALL_TORCH}")
    if REQUIRE_TORCH:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"REQUIRE_TORCH=1: no test may skip here ({when} skipped: {reason})"


# The slow tier: `make test` runs `pytest -m "not slow"` (unit tests, parity and properties); `make test-all`, which
# CI runs, runs everything. Besides tests marked `@pytest.mark.slow` where they stand, these whole modules are slow:
SLOW_MODULES = {
    "test_redteam.py": "kills and restarts training processes at every commit boundary",
    "test_site.py": "builds the site and opens every notebook page in headless Chromium",
    "test_parallel.py": "trains in 8-device and 2-process runs and compares them with one device",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _skip_is_failure(outcome.get_result(), "test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _skip_is_failure(outcome.get_result(), "collection")


# Hypothesis: a quick random profile for development, and a larger derandomized one for CI (set CI=1, or pass
# --hypothesis-profile ci), so a CI failure reproduces exactly and a green CI run means the same examples passed.
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
