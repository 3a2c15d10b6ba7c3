"""What every notebook in docs/notebooks/ shares: the QUICK switch, "predict, then reveal" checks, exercises with
hidden solutions, optional PyTorch.

Standard library only, so a notebook that needs no JAX imports no JAX by importing this.

    from jaxmlp.show.notebook import QUICK, check, exercise, optional_torch, reveal
    torch = optional_torch()          # the module, or None (after one printed line) when it is not installed

A prediction is three cells. The learner writes an answer, the check says only whether it is right, and the
answer itself waits in a third cell whose output is collapsed (tags `hide-output`, metadata
`jupyter.outputs_hidden`), so neither the executed notebook nor the site shows it until asked for:

    prediction = None                 # the learner writes an answer here
    check(prediction, actual, "why the answer is what it is")
    reveal()                          # collapsed: prints the answer and why

An exercise is three cells too. The learner's stub raises NotImplementedError; the solution sits in a cell
whose source is collapsed (tags `hide-input`, metadata `jupyter.source_hidden`); the check cell runs the test
on the solution (so an executed notebook proves the solution right) and then on the learner's attempt:

    def momentum_step(...):
        raise NotImplementedError("your code here")
    def momentum_step_solution(...): ...          # collapsed
    exercise(momentum_step, test_momentum_step, solution=momentum_step_solution)
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from typing import Any

QUICK = os.environ.get("QUICK", "0") not in ("", "0")
"""True when the notebooks run in their short setting (`QUICK=1 make notebooks`, as CI runs them)."""

NO_TORCH = "PyTorch is not installed (pip install torch==2.13.0): this cell's PyTorch part is skipped."

NO_PREDICTION = (
    "No prediction yet: write your answer in `prediction` above and run this cell again "
    "(or run the next cell, `reveal()`, to see the answer)."
)

_last_answer: tuple[Any, str] | None = None  # the answer and its reason, from the latest check(), for reveal()


def check(prediction: Any, actual: Any, why: str) -> bool | None:
    """Say whether the learner's `prediction` matches `actual`; never raises, never shows an unasked answer.

    Returns True or False, or None while `prediction` is still None (not answered yet): then it prints how to
    answer and nothing of the answer, so a notebook executed with no answers gives nothing away. Either way
    the answer and `why` are kept for `reveal()`.
    """
    global _last_answer
    _last_answer = (actual, why)
    if prediction is None:
        print(NO_PREDICTION)
        return None
    right = matches(prediction, actual)
    print(f"{'Right' if right else 'Not quite'}: the answer is {actual!r}. {why}")
    return right


def reveal() -> None:
    """Print the answer of the latest `check()` and why: the cell the learner runs when they want it."""
    if _last_answer is None:
        print("Nothing to reveal yet: run the check cell above first.")
        return
    actual, why = _last_answer
    print(f"Answer: {actual!r}. {why}")


def matches(prediction: Any, actual: Any) -> bool:
    """Equality as a learner means it: numbers within a relative 1e-6, arrays element by element.

    `0.1 + 0.2` matches `0.3`, `np.int64(4)` matches `4`, and an array prediction compares every
    element instead of raising NumPy's "truth value of an array is ambiguous".
    """
    if isinstance(prediction, numbers.Real) and isinstance(actual, numbers.Real):
        return math.isclose(prediction, actual, rel_tol=1e-6, abs_tol=1e-12)
    try:
        equal = prediction == actual
        return bool(equal.all() if hasattr(equal, "all") else equal)
    except (TypeError, ValueError):  # arrays of different shapes
        return False


def exercise(attempt: Callable, test: Callable[[Callable], Any], *, solution: Callable) -> bool | None:
    """Check the learner's `attempt` with `test`, which raises AssertionError (with a message) when it is wrong.

    `test(solution)` runs first and must pass: an executed notebook thereby proves its hidden solution right,
    and a broken solution fails the notebook's run instead of misleading the learner. Returns True when the
    attempt passes, False when it fails (the message says how), None while it is still the stub (it raises
    NotImplementedError).
    """
    test(solution)
    try:
        test(attempt)
    except NotImplementedError:
        print(f"Not written yet: fill in `{_name(attempt)}` above and run this cell again (the solution is hidden).")
        return None
    except AssertionError as wrong:
        print(f"Not yet: {wrong}" if str(wrong) else f"Not yet: `{_name(attempt)}` fails the test.")
        return False
    print(f"Passed: `{_name(attempt)}` does what the test asks.")
    return True


def _name(function: Callable) -> str:
    return getattr(function, "__name__", repr(function))


def optional_torch():
    """`torch` when it is installed; otherwise None, after one line saying what is skipped."""
    try:
        import torch
    except ImportError:
        print(NO_TORCH)
        return None
    return torch
