"""Tensor factories and dtype names beyond tensor.py's core (torch.full, empty, eye, arange, *_like, randint).

The dtype names are NumPy dtypes spelled as torch spells them (`tracer.float64`, `tracer.double`, ...).
"""

from __future__ import annotations

import numpy as np

from tracer.tensor import Tensor, _default_dtype, _rng, _shape

float16, float32, float64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
int32, int64, bool_ = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)
half, double, long = float16, float64, int64
DTYPES = {
    "float16": float16,
    "float32": float32,
    "float64": float64,
    "half": half,
    "float": float32,
    "double": double,
    "int32": int32,
    "int": int32,
    "int64": int64,
    "long": long,
    "bool": bool_,
}


def full(size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = _default_dtype[0] if isinstance(fill_value, float) else np.asarray(fill_value).dtype
    return Tensor(
        np.full(_shape((size,) if isinstance(size, int) else tuple(size)), fill_value, dtype),
        requires_grad=requires_grad,
    )


def empty(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zero-filled (torch leaves the memory uninitialized; zeros are one of its possible contents)."""
    return Tensor(np.zeros(_shape(shape), dtype or _default_dtype[0]), requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.eye(n, m, dtype=dtype or _default_dtype[0]), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    start, end = (0, start) if end is None else (start, end)
    if dtype is None:
        floats = any(isinstance(v, float) for v in (start, end, step))
        dtype = _default_dtype[0] if floats else np.int64
    return Tensor(np.arange(start, end, step, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(t.shape, fill_value, dtype or t.dtype), requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(_rng[0].standard_normal(t.shape).astype(dtype or t.dtype), requires_grad=requires_grad)


def rand_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(_rng[0].random(t.shape).astype(dtype or t.dtype), requires_grad=requires_grad)


def randint(low, high=None, size=(), dtype=None) -> Tensor:
    low, high = (0, low) if high is None else (low, high)
    return Tensor(_rng[0].integers(low, high, size=tuple(size)).astype(dtype or np.int64))
