"""Reductions: sum, mean and max, over everything or along dimensions, each beside its backward node and JVP rule.

A reduction's backward puts the reduced dimensions back as size 1 and expands the gradient over the input's shape
(`expand_to`); broadcasting's backward is the other way round, a sum down to the operand's shape (`sum_to`, as
PyTorch's `at::sum_to`), which the binary ops of `pointwise.py` and the other families use.
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node, unbroadcast
from tracer.recording import record
from tracer.tensor import Tensor

# --- formulas on arrays or tensors: the steps where NumPy and tracer ops are spelled differently ---------------


def sum_to(g, shape: tuple):
    """Sum `g` down to `shape`: the backward of broadcasting (PyTorch's `sum_to`)."""
    if not isinstance(g, Tensor):
        return unbroadcast(g, shape)
    extra = g.ndim - len(shape)
    if extra:
        g = sum(g, tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return sum(g, axes, keepdim=True) if axes else g


def expand_to(g, shape: tuple):
    """`g` broadcast up to `shape`, as a fresh array or as an ExpandBackward0."""
    if not isinstance(g, Tensor):
        return np.broadcast_to(g, shape).copy()
    from tracer.shape_ops import expand  # (shape_ops imports this module: expand's backward is sum_to)

    return expand(g, *shape)


def unsqueeze_reduced(g, shape: tuple, dim, keepdim: bool):
    """A reduction's gradient with the reduced dimensions put back as size 1, ready to broadcast over `shape`."""
    if dim is None or keepdim:
        return g
    dims = {d % len(shape) for d in np.atleast_1d(dim)}
    return g.reshape(tuple(1 if i in dims else n for i, n in enumerate(shape)))


# --- reductions ----------------------------------------------------------------------------------------------


class SumBackward0(Node):
    self_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return np.sum(t[0])

    def backward(self, g):
        return (expand_to(g, self.self_shape),)


class SumBackward1(Node):
    self_shape: tuple
    dim: int | tuple
    keepdim: bool

    @staticmethod
    def jvp(out, x, t, dim, keepdim, **_):
        return np.sum(t[0], axis=dim, keepdims=keepdim)

    def backward(self, g):
        return (expand_to(unsqueeze_reduced(g, self.self_shape, self.dim, self.keepdim), self.self_shape),)


def sum(a, dim=None, keepdim=False):
    if dim is None:
        return record(np.sum(a.data), SumBackward0, a, self_shape=a.shape)
    data = np.sum(a.data, axis=dim, keepdims=keepdim)
    return record(data, SumBackward1, a, self_shape=a.shape, dim=dim, keepdim=keepdim)


class MeanBackward0(Node):
    self_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return np.mean(t[0])

    def backward(self, g):
        return (expand_to(g / int(np.prod(self.self_shape)), self.self_shape),)


class MeanBackward1(Node):
    self_shape: tuple
    dim: int | tuple
    keepdim: bool

    @staticmethod
    def jvp(out, x, t, dim, keepdim, **_):
        return np.mean(t[0], axis=dim, keepdims=keepdim)

    def backward(self, g):
        n = int(np.prod([self.self_shape[d] for d in np.atleast_1d(self.dim)]))
        return (expand_to(unsqueeze_reduced(g / n, self.self_shape, self.dim, self.keepdim), self.self_shape),)


def mean(a, dim=None, keepdim=False):
    if dim is None:
        return record(np.mean(a.data), MeanBackward0, a, self_shape=a.shape)
    data = np.mean(a.data, axis=dim, keepdims=keepdim)
    return record(data, MeanBackward1, a, self_shape=a.shape, dim=dim, keepdim=keepdim)


class MaxBackward1(Node):  # max over everything: ties share the gradient evenly (PyTorch's amax rule)
    saves = ("self", "result")

    @staticmethod
    def jvp(out, x, t, **_):
        return np.mean(t[0][x[0] == out])  # ties share, as in backward

    def backward(self, g):
        mask = self.saved_data("self") == self.saved_data("result")
        return (mask * (g / int(mask.sum())),)


class MaxBackward0(Node):  # max(dim): the gradient goes to the one index returned
    self_shape: tuple
    dim: int
    keepdim: bool
    saved_indices: np.ndarray  # with the reduced dimension kept

    @staticmethod
    def jvp(out, x, t, dim, keepdim, saved_indices, **_):
        chosen = np.take_along_axis(t[0], saved_indices, axis=dim)
        return chosen if keepdim else np.squeeze(chosen, dim)

    def backward(self, g):
        chosen = np.zeros(self.self_shape, dtype=bool)
        np.put_along_axis(chosen, self.saved_indices, True, axis=self.dim)
        return (expand_to(unsqueeze_reduced(g, self.self_shape, self.dim, self.keepdim), self.self_shape) * chosen,)


def max(a, dim=None, keepdim=False):
    if dim is None:
        return record(np.max(a.data), MaxBackward1, a)
    idx = np.expand_dims(np.argmax(a.data, axis=dim), dim)  # first maximal index, as PyTorch on CPU
    values = np.take_along_axis(a.data, idx, axis=dim)
    values = values if keepdim else np.squeeze(values, dim)
    out = record(values, MaxBackward0, a, self_shape=a.shape, dim=dim, keepdim=keepdim, saved_indices=idx)
    return out, Tensor(idx if keepdim else np.squeeze(idx, dim))


def install() -> None:
    for name, fn in {"sum": sum, "mean": mean, "max": max}.items():
        setattr(Tensor, name, fn)


install()
