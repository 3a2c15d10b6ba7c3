"""jaxmlp.show.notebook: the QUICK switch, check cells and optional PyTorch that every notebook shares."""

import subprocess
import sys
import types

import numpy as np
import pytest

from jaxmlp.show import notebook


@pytest.mark.parametrize(("value", "quick"), [(None, False), ("0", False), ("", False), ("1", True), ("yes", True)])
def test_quick_comes_from_the_environment(value, quick, monkeypatch):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    if value is not None:
        env["QUICK"] = value
    code = "from jaxmlp.show.notebook import QUICK; print(QUICK)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(quick)


def test_notebook_helpers_import_nothing_heavy():
    code = "import jaxmlp.show.notebook, sys; assert not {'jax', 'numpy', 'matplotlib', 'torch'} & set(sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_check_says_right_or_not_and_why(capsys):
    assert notebook.check(3, 3, "because") is True
    assert capsys.readouterr().out == "Right: the answer is 3. because\n"
    assert notebook.check(4, 3, "because") is False
    assert capsys.readouterr().out.startswith("Not quite: the answer is 3.")
    assert notebook.check(0.1 + 0.2, 0.3, "") is True  # as `matches` compares: numbers within 1e-6
    assert notebook.check(np.array([1, 2]), np.array([1, 2]), "") is True  # arrays do not raise


def test_check_without_a_prediction_shows_no_answer_and_returns_none(capsys):
    assert notebook.check(None, (4, 9), "the largest count") is None
    out = capsys.readouterr().out
    assert out == notebook.NO_PREDICTION + "\n"
    assert "(4, 9)" not in out and "the largest count" not in out


def test_reveal_prints_the_latest_checks_answer_and_why(capsys):
    notebook.check(None, (4, 9), "the largest count")
    notebook.check(None, 7, "seven, because")
    capsys.readouterr()
    notebook.reveal()
    assert capsys.readouterr().out == "Answer: 7. seven, because\n"


def _test_double(f):
    if f(3) != 6:  # raised by hand: pytest rewrites `assert` messages in test modules, notebooks do not
        raise AssertionError(f"f(3) should be 6, got {f(3)}")


def _stub(x):
    raise NotImplementedError("your code here")


def test_exercise_reports_stub_pass_and_fail_and_proves_the_solution(capsys):
    double = lambda x: 2 * x
    assert notebook.exercise(_stub, _test_double, solution=double) is None
    assert capsys.readouterr().out.startswith("Not written yet: fill in `_stub`")
    assert notebook.exercise(double, _test_double, solution=double) is True
    assert capsys.readouterr().out.startswith("Passed")
    assert notebook.exercise(lambda x: x, _test_double, solution=double) is False
    assert capsys.readouterr().out == "Not yet: f(3) should be 6, got 3\n"
    with pytest.raises(AssertionError):  # a wrong solution fails the notebook's run
        notebook.exercise(double, _test_double, solution=lambda x: x)


def test_matches_numbers_within_tolerance_and_arrays_without_raising():
    assert notebook.matches(0.1 + 0.2, 0.3) and not notebook.matches(0.3001, 0.3)
    assert notebook.matches((np.int64(4), np.int64(9)), (4, 9))
    assert notebook.matches(np.array([1, 2]), np.array([1, 2]))
    assert not notebook.matches(np.array([1, 2]), np.array([1, 3]))
    assert not notebook.matches(np.array([1, 2]), np.array([1, 2, 3]))
    assert not notebook.matches("same", "first") and notebook.matches(False, False)


def test_optional_torch_returns_the_module_when_importable(monkeypatch, capsys):
    fake = types.ModuleType("torch")  # stands in for torch, so the test runs whether or not torch is installed
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert notebook.optional_torch() is fake
    assert capsys.readouterr().out == ""


def test_optional_torch_without_torch_prints_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert notebook.optional_torch() is None
    assert capsys.readouterr().out == notebook.NO_TORCH + "\n"
