"""Shape and view ops: view, reshape, flatten, expand, t, permute, unsqueeze, squeeze, view_as, repeat, cat, stack,
unbind, masked_fill.

Each forward sits beside its backward node and JVP rule, named as PyTorch names them. `unbind` is the one op here
with several outputs: its node receives one gradient per output, and the engine runs it when any has arrived,
with None for the others (PyTorch's `UnbindBackward0` stacks them with zeros in their place).
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node
from tracer.recording import record
from tracer.reductions import sum as sum_
from tracer.reductions import sum_to
from tracer.tensor import Tensor, _grad_enabled


def _dim(dim: int, ndim: int) -> int:
    return dim % ndim if ndim else 0


# --- view, expand, transpose ----------------------------------------------------------------------------------


class ViewBackward0(Node):
    self_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0].reshape(out.shape)

    def backward(self, g):
        return (g.reshape(self.self_shape),)


def view(a, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return record(a.data.reshape(shape), ViewBackward0, a, self_shape=a.shape)


def flatten(a, start_dim=0, end_dim=-1):
    """Dimensions start_dim..end_dim merged into one (a ViewBackward0, as torch.flatten of a contiguous tensor)."""
    start, end = start_dim % a.ndim, end_dim % a.ndim
    return view(a, a.shape[:start] + (-1,) + a.shape[end + 1 :])


class ExpandBackward0(Node):
    self_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return np.broadcast_to(t[0], out.shape)

    def backward(self, g):
        return (sum_to(g, self.self_shape),)


def expand(a, *shape):
    shape = tuple(s if s != -1 else a.shape[i - (len(shape) - a.ndim)] for i, s in enumerate(shape))
    return record(np.broadcast_to(a.data, shape), ExpandBackward0, a, self_shape=a.shape)


class TBackward0(Node):
    @staticmethod
    def jvp(out, x, t, **_):
        return t[0].T

    def backward(self, g):
        return (g.T,)


def t(a):
    return record(a.data.T, TBackward0, a)


class PermuteBackward0(Node):
    dims: tuple

    @staticmethod
    def jvp(out, x, t, dims, **_):
        return np.transpose(t[0], dims)

    def backward(self, g):
        inverse = tuple(np.argsort(self.dims))
        return (permute(g, inverse) if isinstance(g, Tensor) else np.transpose(g, inverse),)


def permute(a, *dims):
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    return record(np.transpose(a.data, dims), PermuteBackward0, a, dims=dims)


# --- adding and removing dimensions, repeating, joining, splitting -------------------------------------------


class UnsqueezeBackward0(Node):
    dim: int

    @staticmethod
    def jvp(out, x, t, dim, **_):
        return np.expand_dims(t[0], dim)

    def backward(self, g):
        return (squeeze(g, self.dim) if isinstance(g, Tensor) else np.squeeze(g, self.dim),)


def unsqueeze(a, dim: int):
    dim = dim % (a.ndim + 1)
    return record(np.expand_dims(a.data, dim), UnsqueezeBackward0, a, dim=dim)


class SqueezeBackward0(Node):
    self_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0].reshape(out.shape)

    def backward(self, g):
        return (view(g, self.self_shape) if isinstance(g, Tensor) else g.reshape(self.self_shape),)


def squeeze(a, dim=None):
    if dim is None:
        data = np.squeeze(a.data)
    else:
        dim = _dim(dim, a.ndim)
        data = np.squeeze(a.data, dim) if a.ndim and a.shape[dim] == 1 else a.data
    return record(data, SqueezeBackward0, a, self_shape=a.shape)


def view_as(a, other):
    return view(a, other.shape)


class RepeatBackward0(Node):
    self_shape: tuple
    repeats: tuple

    @staticmethod
    def jvp(out, x, t, repeats, **_):
        return np.tile(t[0], repeats)

    def backward(self, g):
        shape = (1,) * (len(self.repeats) - len(self.self_shape)) + tuple(self.self_shape)
        split = []  # each repeated dimension split into (repeats, size), then the repeats summed away
        for r, n in zip(self.repeats, shape):
            split += [r, n]
        axes = tuple(range(0, 2 * len(shape), 2))
        g = view(g, tuple(split)) if isinstance(g, Tensor) else g.reshape(split)
        g = sum_(g, axes) if isinstance(g, Tensor) else np.add.reduce(g, axis=axes)
        return (view(g, self.self_shape) if isinstance(g, Tensor) else g.reshape(self.self_shape),)


def repeat(a, *repeats):
    repeats = tuple(repeats[0]) if len(repeats) == 1 and isinstance(repeats[0], (tuple, list)) else repeats
    return record(np.tile(a.data, repeats), RepeatBackward0, a, self_shape=a.shape, repeats=repeats)


class CatBackward0(Node):  # one edge per tensor; the gradient split back along `dim`
    dim: int
    sizes: tuple

    @staticmethod
    def jvp(out, x, t, dim, **_):
        return np.concatenate(t, axis=dim)

    def backward(self, g):
        bounds = np.cumsum((0,) + self.sizes)
        return tuple(_take_range(g, self.dim, int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:]))


def _take_range(g, dim: int, start: int, stop: int):
    key = (slice(None),) * dim + (slice(start, stop),)
    return g[key]


def cat(tensors, dim: int = 0):
    tensors = list(tensors)
    dim = _dim(dim, tensors[0].ndim)
    data = np.concatenate([t.data for t in tensors], axis=dim)
    return record(data, CatBackward0, *tensors, dim=dim, sizes=tuple(t.shape[dim] for t in tensors))


class StackBackward0(Node):  # stack along a new dimension `dim`: one edge per stacked tensor
    dim: int = 0

    @staticmethod
    def jvp(out, x, t, dim=0, **_):
        return np.stack(t, axis=dim)

    def backward(self, g):
        key = (slice(None),) * self.dim
        return tuple(g[key + (i,)] for i in range(len(self.next_functions)))


def stack(tensors, dim: int = 0):
    tensors = list(tensors)
    dim = dim % (tensors[0].ndim + 1)
    return record(np.stack([t.data for t in tensors], axis=dim), StackBackward0, *tensors, dim=dim)


class UnbindBackward0(Node):
    """The node of `unbind`: one input per output; a missing gradient counts as zeros."""

    dim: int
    self_shape: tuple
    self_dtype: np.dtype

    def backward(self, *grads):
        if any(isinstance(g, Tensor) for g in grads):
            zeros = [Tensor(np.zeros(self.self_shape[: self.dim] + self.self_shape[self.dim + 1 :], self.self_dtype))]
            return (stack([zeros[0] if g is None else g for g in grads], self.dim),)
        part = self.self_shape[: self.dim] + self.self_shape[self.dim + 1 :]
        return (np.stack([np.zeros(part, self.self_dtype) if g is None else g for g in grads], axis=self.dim),)


def unbind(a, dim: int = 0):
    dim = _dim(dim, a.ndim)
    parts = [Tensor(np.take(a.data, i, axis=dim)) for i in range(a.shape[dim])]
    if _grad_enabled[0] and a.requires_grad:
        node = UnbindBackward0((a.gradient_edge(),))
        node.num_inputs, node.dim, node.self_shape, node.self_dtype = len(parts), dim, a.shape, a.dtype
        for nr, part in enumerate(parts):
            part.grad_fn, part._output_nr = node, nr
    return tuple(parts)


class MaskedFillBackward0(Node):
    mask: np.ndarray

    @staticmethod
    def jvp(out, x, t, mask, **_):
        return np.where(mask, 0, t[0])

    def backward(self, g):
        keep = ~self.mask
        return (g * keep,)


def masked_fill(a, mask, value):
    mask = np.broadcast_to(getattr(mask, "data", mask).astype(bool), a.shape)
    return record(
        np.where(mask, np.asarray(getattr(value, "data", value), a.dtype), a.data), MaskedFillBackward0, a, mask=mask
    )


def install() -> None:
    methods = {
        "view": view,
        "reshape": view,
        "flatten": flatten,
        "expand": expand,
        "t": t,
        "permute": permute,
        "T": property(lambda a: permute(a, tuple(reversed(range(a.ndim))))),
        "unsqueeze": unsqueeze,
        "squeeze": squeeze,
        "view_as": view_as,
        "repeat": repeat,
        "unbind": unbind,
        "masked_fill": masked_fill,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


install()
