"""What every notebook in docs/notebooks/ shares: the QUICK switch, "predict, then run" checks, optional PyTorch.

Standard library only, so a notebook that needs no JAX imports no JAX by importing this.

    from jaxmlp.notebook import QUICK, check, optional_torch
    torch = optional_torch()          # the module, or None (after one printed line) when it is not installed
    prediction = None                 # the learner writes an answer here before running the check cell
    check(prediction, actual, "why the answer is what it is")
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

QUICK = os.environ.get("QUICK", "0") not in ("", "0")
"""True when the notebooks run in their short setting (`QUICK=1 make notebooks`, as CI runs them)."""

NO_TORCH = "PyTorch is not installed (pip install torch==2.13.0): this cell's PyTorch part is skipped."


def check(prediction: Any, actual: Any, why: str) -> bool | None:
    """Say whether the learner's `prediction` matches `actual`, and why; never raises.

    Returns True or False, or None while `prediction` is still None (not answered yet), so a
    notebook executed top to bottom with no answers still runs and shows every explanation.
    """
    if prediction is None:
        print(f"No prediction yet: set `prediction` above, then run this cell again.\nAnswer: {actual!r}. {why}")
        return None
    right = matches(prediction, actual)
    print(f"{'Right' if right else 'Not quite'}: the answer is {actual!r}. {why}")
    return right


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


def optional_torch():
    """`torch` when it is installed; otherwise None, after one line saying what is skipped."""
    try:
        import torch
    except ImportError:
        print(NO_TORCH)
        return None
    return torch
