"""Anomaly mode (torch.autograd.detect_anomaly / set_detect_anomaly).

While it is on, every node remembers where in the user's code its forward op ran, and the engine checks each
node it runs: if the node fails, a warning shows that forward call; if it returns NaN (with `check_nan`), it
fails with PyTorch's `Function 'PowBackward0' returned nan values in its 0th output.` It slows everything
down, so it is for debugging only.
"""

from __future__ import annotations

import functools
import warnings

from tracer.graph import forward_stack  # noqa: F401  (where nodes get their forward call)
from tracer.tensor import _anomaly

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled"]


def is_anomaly_enabled() -> bool:
    return _anomaly[0]


def is_anomaly_check_nan_enabled() -> bool:
    return _anomaly[1]


class set_detect_anomaly:
    """Turn anomaly mode on or off: at once, and back to what it was at the end of a `with` block."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self.prev = tuple(_anomaly)
        _anomaly[:] = [mode, check_nan]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _anomaly[:] = self.prev


class detect_anomaly:
    """Anomaly mode inside a `with` block, or around every call of a decorated function."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        warnings.warn(
            "Anomaly Detection has been enabled. This mode will increase the runtime and should only be enabled "
            "for debugging.",
            UserWarning,
            stacklevel=2,
        )

    def __enter__(self):
        self.prev = tuple(_anomaly)
        _anomaly[:] = [True, self.check_nan]

    def __exit__(self, *exc):
        _anomaly[:] = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def with_anomaly_mode(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return with_anomaly_mode
