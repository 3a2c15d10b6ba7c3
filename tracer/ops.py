"""Differentiable ops. Each forward sits beside the backward node it records, named as PyTorch names it.

A forward op computes its NumPy result and, when grad mode is on and some
input requires grad, creates its node: `next_functions` gets one edge per
tensor argument (in PyTorch's argument order), and the tensors the node class
declares in `saves` are saved. The node's `backward(grad)` returns one gradient
per edge.

Each backward formula is written once and reads like PyTorch's (derivatives.yaml).
On the plain path (`backward()`, `grad()`) it runs on NumPy arrays. With
`create_graph=True` the engine hands it tensors and `saved()` returns tensors,
so the same arithmetic runs as tracer ops and is itself recorded: that graph is
what double backward differentiates. The few steps that differ between arrays
and tensors (summing to a shape, expanding, exp) are the helpers just below.
"""

from __future__ import annotations

import numpy as np

from tracer.autograd.anomaly_mode import forward_stack
from tracer.graph import Node, unbroadcast
from tracer.tensor import Tensor, _anomaly, _default_dtype, _grad_enabled, _tangents, is_grad_enabled


def as_tensor(x, like=None) -> Tensor:
    """`x` as a Tensor; a Python number takes the dtype of `like` (as in PyTorch: 2.0 * float32 stays float32)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float)) and isinstance(like, Tensor):
        return Tensor(np.asarray(x, dtype=like.dtype))
    if isinstance(x, float):
        return Tensor(np.asarray(x, dtype=_default_dtype[0]))
    return Tensor(np.asarray(x))


NO_EDGE = (None, 0)  # the edge of an input that needs no gradient


def record(data, node_cls: type[Node], *inputs: Tensor, **attrs) -> Tensor:
    """Wrap `data` as the output of `node_cls` applied to the tensors `inputs`.

    No node is made under `no_grad()` or when no input requires grad (every edge is then `(None, 0)`).
    Otherwise the node gets `attrs` (the non-tensor values its class annotates) and saves what its class
    declares in `saves`: inputs by name, and the output as "result", packed without its grad_fn.
    Inside `forward_ad.dual_level()`, the output also gets its tangent, by the node class's `jvp` rule.
    """
    out = Tensor(data)
    if _tangents[0] is not None:
        _push_tangent(out, node_cls, inputs, attrs)
    if not _grad_enabled[0]:  # (is_grad_enabled() without the call)
        return out
    edges = tuple([t.gradient_edge() for t in inputs])
    if edges.count(NO_EDGE) == len(edges):
        return out
    node = node_cls(edges)
    for name, value in attrs.items():
        setattr(node, name, value)
    out.grad_fn = node
    if _anomaly[0]:
        node._forward_stack = forward_stack()
    for name, i, needed_by in node_cls._save_plan:
        if needed_by is None or any(edges[j][0] is not None for j in needed_by):
            node.save(name, out if i < 0 else inputs[i], is_output=i < 0)
    return out


def _push_tangent(out: Tensor, node_cls: type[Node], inputs: tuple, attrs: dict) -> None:
    """Forward mode: `jvp(out, x, t, **attrs)` maps the inputs' values x and tangents t to the output's tangent."""
    tangents = _tangents[0]
    given = [tangents.get(x) for x in inputs]
    if all(t is None for t in given):
        return
    t = [np.zeros_like(x.data) if g is None else g for g, x in zip(given, inputs)]
    tangent = node_cls.jvp(out.data, [x.data for x in inputs], t, **attrs)
    tangents[out] = np.asarray(tangent, dtype=out.dtype)


# --- formulas on arrays or tensors: the steps where NumPy and tracer ops are spelled differently ------------


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
    return expand(g, *shape) if isinstance(g, Tensor) else np.broadcast_to(g, shape).copy()


def sum_dim(g, dim, keepdim: bool = False):
    return sum(g, dim, keepdim) if isinstance(g, Tensor) else np.add.reduce(g, axis=dim, keepdims=keepdim)


def exp_of(y):
    return exp(y) if isinstance(y, Tensor) else np.exp(y)


def unsqueeze_reduced(g, shape: tuple, dim, keepdim: bool):
    """A reduction's gradient with the reduced dimensions put back as size 1, ready to broadcast over `shape`."""
    if dim is None or keepdim:
        return g
    dims = {d % len(shape) for d in np.atleast_1d(dim)}
    return g.reshape(tuple(1 if i in dims else n for i, n in enumerate(shape)))


# --- elementwise binary -----------------------------------------------------


class AddBackward0(Node):
    inputs = ("self", "other")
    self_shape: tuple
    other_shape: tuple
    alpha: float

    @staticmethod
    def jvp(out, x, t, alpha, **_):
        return t[0] + alpha * t[1]

    def backward(self, g):
        return sum_to(g, self.self_shape), sum_to(g * self.alpha if self.alpha != 1 else g, self.other_shape)


def add(a, b, alpha=1.0):
    a, b = as_tensor(a, b), as_tensor(b, a)
    data = a.data + alpha * b.data if alpha != 1 else a.data + b.data
    return record(data, AddBackward0, a, b, self_shape=a.shape, other_shape=b.shape, alpha=alpha)


class SubBackward0(Node):
    inputs = ("self", "other")
    self_shape: tuple
    other_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] - t[1]

    def backward(self, g):
        return sum_to(g, self.self_shape), sum_to(-g, self.other_shape)


def sub(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    return record(a.data - b.data, SubBackward0, a, b, self_shape=a.shape, other_shape=b.shape)


class RsubBackward1(Node):  # Python scalar - tensor: the scalar is no tensor, so one edge
    @staticmethod
    def jvp(out, x, t, **_):
        return -t[0]

    def backward(self, g):
        return (-g,)


def rsub(a, scalar):
    return record(scalar - a.data, RsubBackward1, a)


class MulBackward0(Node):
    inputs = ("self", "other")
    saves = ("self", "other")
    save_for = {"self": (1,), "other": (0,)}  # each operand is needed only for the other one's gradient
    self_shape: tuple
    other_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * x[1] + x[0] * t[1]

    def backward(self, g):
        return (
            sum_to(g * self.saved("other"), self.self_shape) if self.should_compute_output(0) else None,
            sum_to(g * self.saved("self"), self.other_shape) if self.should_compute_output(1) else None,
        )


def mul(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    return record(a.data * b.data, MulBackward0, a, b, self_shape=a.shape, other_shape=b.shape)


class DivBackward0(Node):
    inputs = ("self", "other")
    saves = ("self", "other")
    save_for = {"self": (1,), "other": (0, 1)}
    self_shape: tuple
    other_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] / x[1] - x[0] * t[1] / (x[1] * x[1])

    def backward(self, g):
        grad_self = grad_other = None
        if self.should_compute_output(0):
            grad_self = sum_to(g / self.saved("other"), self.self_shape)
        if self.should_compute_output(1):
            a, b = self.saved("self"), self.saved("other")
            grad_other = sum_to(-g * a / (b * b), self.other_shape)
        return grad_self, grad_other


def div(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    return record(a.data / b.data, DivBackward0, a, b, self_shape=a.shape, other_shape=b.shape)


class PowBackward0(Node):  # tensor ** scalar
    saves = ("self",)
    exponent: float

    @staticmethod
    def jvp(out, x, t, exponent, **_):
        return t[0] * exponent * x[0] ** (exponent - 1) if exponent != 0 else 0 * t[0]

    def backward(self, g):
        x, p = self.saved("self"), self.exponent
        return (g * p * x ** (p - 1) if p != 0 else g * 0.0,)


class PowBackward1(Node):  # tensor ** tensor
    inputs = ("self", "exponent")
    saves = ("self", "exponent", "result")

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * x[1] * x[0] ** (x[1] - 1) + t[1] * out * np.log(np.where(x[0] > 0, x[0], 1.0)) * (x[0] > 0)

    def backward(self, g):
        a, b, out = self.saved("self"), self.saved("exponent"), self.saved("result")
        positive = self.saved_data("self") > 0  # d/db a**b = a**b log a, taken as 0 where log a is undefined
        log_a = log(a * positive + (1.0 - positive)) if isinstance(a, Tensor) else np.log(np.where(positive, a, 1.0))
        return sum_to(g * b * a ** (b - 1), a.shape), sum_to(g * out * log_a * positive, b.shape)


class PowBackward2(Node):  # Python scalar ** tensor
    saves = ("result",)
    base: float

    @staticmethod
    def jvp(out, x, t, base, **_):
        return t[0] * out * np.log(base)

    def backward(self, g):
        return (g * self.saved("result") * float(np.log(self.base)),)


def rpow(a, base):
    return record(base**a.data, PowBackward2, a, base=base)


class ReciprocalBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return -t[0] * out * out

    def backward(self, g):
        y = self.saved("result")
        return (-g * y * y,)


def reciprocal(a):
    return record(1 / a.data, ReciprocalBackward0, a)


def pow(a, p):
    a = as_tensor(a)
    if isinstance(p, Tensor):
        return record(a.data**p.data, PowBackward1, a, p)
    return record(a.data**p, PowBackward0, a, exponent=p)


# --- elementwise unary --------------------------------------------------------


class NegBackward0(Node):
    @staticmethod
    def jvp(out, x, t, **_):
        return -t[0]

    def backward(self, g):
        return (-g,)


def neg(a):
    return record(-a.data, NegBackward0, a)


class CloneBackward0(Node):
    @staticmethod
    def jvp(out, x, t, **_):
        return t[0]

    def backward(self, g):
        return (g,)


def clone(a):
    return record(a.data.copy(), CloneBackward0, a)


class ExpBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * out

    def backward(self, g):
        return (g * self.saved("result"),)


def exp(a):
    return record(np.exp(a.data), ExpBackward0, a)


class LogBackward0(Node):
    saves = ("self",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] / x[0]

    def backward(self, g):
        return (g / self.saved("self"),)


def log(a):
    return record(np.log(a.data), LogBackward0, a)


class ReluBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * (out > 0)

    def backward(self, g):
        return (g * (self.saved_data("result") > 0),)  # relu'' = 0: the mask is a constant


def relu(a):
    return record(np.maximum(a.data, 0), ReluBackward0, a)


class TanhBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * (1 - out * out)

    def backward(self, g):
        y = self.saved("result")
        return (g * (1 - y * y),)


def tanh(a):
    return record(np.tanh(a.data), TanhBackward0, a)


class SigmoidBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * out * (1 - out)

    def backward(self, g):
        y = self.saved("result")
        return (g * y * (1 - y),)


def sigmoid(a):
    return record(1 / (1 + np.exp(-a.data)), SigmoidBackward0, a)


class AbsBackward0(Node):
    saves = ("self",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * np.sign(x[0])

    def backward(self, g):
        return (g * np.sign(self.saved_data("self")),)  # sign(0) = 0: PyTorch's abs'(0)


def abs(a):
    return record(np.abs(a.data), AbsBackward0, a)


class ClampBackward1(Node):
    saves = ("self",)
    min: float | None
    max: float | None

    @staticmethod
    def jvp(out, x, t, min, max, **_):
        return t[0] * ((x[0] >= (-np.inf if min is None else min)) & (x[0] <= (np.inf if max is None else max)))

    def backward(self, g):
        x = self.saved_data("self")
        keep = np.ones_like(x, dtype=bool)
        if self.min is not None:
            keep &= x >= self.min
        if self.max is not None:
            keep &= x <= self.max
        return (g * keep,)  # the boundary itself passes the gradient, as in PyTorch


def clamp(a, min=None, max=None):
    return record(np.clip(a.data, min, max), ClampBackward1, a, min=min, max=max)


# --- reductions ---------------------------------------------------------------


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


# --- shapes and matrices --------------------------------------------------------


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


def _mat2_grad(mat1, g, mat2_strides: tuple):
    """mat1ᵀ·g, laid out like mat2 was: PyTorch's mm_mat2_backward, which also reads the strides saved at forward
    time. When mat2 is a transposed weight (column-major), (gᵀ·mat1)ᵀ brings the weight's gradient out C-contiguous."""
    column_major = mat2_strides[0] < mat2_strides[1]
    return (g.T @ mat1).T if column_major else mat1.T @ g


class MmBackward0(Node):
    inputs = ("self", "mat2")
    saves = ("self", "mat2")
    save_for = {"self": (1,), "mat2": (0,)}
    mat2_strides: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] @ x[1] + x[0] @ t[1]

    def backward(self, g):
        return (
            (g @ self.saved("mat2").T if self.should_compute_output(0) else None),
            (_mat2_grad(self.saved("self"), g, self.mat2_strides) if self.should_compute_output(1) else None),
        )


def mm(a, b):
    return record(a.data @ b.data, MmBackward0, a, b, mat2_strides=b.data.strides)


class AddmmBackward0(Node):  # bias + mat1 @ mat2, next_functions in PyTorch's order: (bias, mat1, mat2)
    inputs = ("self", "mat1", "mat2")
    saves = ("mat1", "mat2")
    save_for = {"mat1": (2,), "mat2": (1,)}
    self_shape: tuple
    mat2_strides: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] + t[1] @ x[2] + x[1] @ t[2]

    def backward(self, g):
        return (
            sum_to(g, self.self_shape) if self.should_compute_output(0) else None,
            g @ self.saved("mat2").T if self.should_compute_output(1) else None,
            _mat2_grad(self.saved("mat1"), g, self.mat2_strides) if self.should_compute_output(2) else None,
        )


def addmm(bias, mat1, mat2):
    data = mat1.data @ mat2.data
    if data.dtype == bias.dtype:
        data += bias.data  # into the product, as torch's addmm adds the bias in the same kernel: no temporary
    else:
        data = data + bias.data
    return record(data, AddmmBackward0, bias, mat1, mat2, self_shape=bias.shape, mat2_strides=mat2.data.strides)


class StackBackward0(Node):  # stack along a new first dimension: one edge per stacked tensor
    @staticmethod
    def jvp(out, x, t, **_):
        return np.stack(t)

    def backward(self, g):
        return tuple(g[i] for i in range(len(self.next_functions)))


def stack(tensors):
    return record(np.stack([t.data for t in tensors]), StackBackward0, *tensors)


class _ScatterIntoZeros(Node):
    """The backward of an indexing op: the gradient placed into zeros of the input's shape at `key`."""

    key: tuple

    @staticmethod
    def jvp(out, x, t, key, **_):
        placed = np.zeros(out.shape, t[0].dtype)
        np.add.at(placed, key, t[0])
        return placed

    def backward(self, g):
        return (g[self.key],)  # placing, differentiated, is picking the same entries back out


class SelectBackwardBackward0(_ScatterIntoZeros):
    pass


class SliceBackwardBackward0(_ScatterIntoZeros):
    pass


class IndexPutImplBackward0(_ScatterIntoZeros):
    pass


def scatter_into_zeros(g, shape: tuple, key: tuple, node_cls: type[_ScatterIntoZeros]):
    """zeros(shape) with `g` added at `key` (repeated indices add up): an array, or a tensor with its node."""
    out = np.zeros(shape, dtype=g.dtype)
    if node_cls is IndexPutImplBackward0:
        np.add.at(out, key, g.data if isinstance(g, Tensor) else g)
    else:  # integers and slices never name an entry twice
        out[key] = g.data if isinstance(g, Tensor) else g
    return record(out, node_cls, g, key=key) if isinstance(g, Tensor) else out


class SelectBackward0(Node):
    self_shape: tuple
    key: tuple

    @staticmethod
    def jvp(out, x, t, key, **_):
        return t[0][key]

    def backward(self, g):
        return (scatter_into_zeros(g, self.self_shape, self.key, SelectBackwardBackward0),)


class SliceBackward0(SelectBackward0):
    def backward(self, g):
        return (scatter_into_zeros(g, self.self_shape, self.key, SliceBackwardBackward0),)


class IndexBackward0(SelectBackward0):
    def backward(self, g):
        self.saved_data("indices")  # freed after a backward without retain_graph, as torch's saved indices are
        return (scatter_into_zeros(g, self.self_shape, self.key, IndexPutImplBackward0),)


def save_indices(node: Node | None) -> None:
    """Advanced indexing saves its index tensors (torch's `indices_`): here a placeholder standing for them, so
    that backpropagating twice without retain_graph is the same error."""
    if node is not None:
        node.save("indices", Tensor(np.zeros(0)))


def getitem(a, index):
    """Integers and slices become chains of SelectBackward0 / SliceBackward0, as in PyTorch; the rest IndexBackward0."""
    from tracer.inplace_ops import normalize_index

    index = normalize_index(index)
    index = index if isinstance(index, tuple) else (index,)
    if all(isinstance(i, (int, np.integer, slice)) for i in index) and len(index) <= a.ndim:
        out, dim = a, 0
        for i in index:
            if i == slice(None):
                dim += 1
                continue
            key = (slice(None),) * dim + (i,)
            node_cls = SliceBackward0 if isinstance(i, slice) else SelectBackward0
            out = record(out.data[key], node_cls, out, self_shape=out.shape, key=key)
            dim += isinstance(i, slice)
        if out is a:  # x[:]: a view of x all the same
            out = record(a.data[...], SliceBackward0, a, self_shape=a.shape, key=(slice(None),))
        out._version_counter, out._base = a._shared_version_counter(), a if a._base is None else a._base
        return out
    out = record(a.data[index], IndexBackward0, a, self_shape=a.shape, key=index)
    save_indices(out.grad_fn)
    return out


# --- neural-network ops -------------------------------------------------------------


def _log_softmax(x, dim):
    # (ufunc reductions called directly: the ndarray.max / .sum wrappers cost more than the work on small batches)
    shifted = x - np.maximum.reduce(x, axis=dim, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=dim, keepdims=True))


class LogSoftmaxBackward0(Node):
    saves = ("result",)
    dim: int

    @staticmethod
    def jvp(out, x, t, dim, **_):
        return t[0] - np.add.reduce(np.exp(out) * t[0], axis=dim, keepdims=True)

    def backward(self, g):
        y = self.saved("result")
        return (g - exp_of(y) * sum_dim(g, self.dim, keepdim=True),)


def log_softmax(a, dim=-1):
    return record(_log_softmax(a.data, dim), LogSoftmaxBackward0, a, dim=dim)


class NllLossBackward0(Node):
    self_shape: tuple
    target: np.ndarray
    reduction: str

    @staticmethod
    def jvp(out, x, t, target, reduction, **_):
        picked = -t[0][np.arange(len(target)), target]
        return picked.mean() if reduction == "mean" else picked.sum()

    def backward(self, g):
        n = len(self.target)
        picked = np.zeros(self.self_shape, dtype=g.dtype)  # -1 (or -1/n) at each row's target
        picked[np.arange(n), self.target] = -1 / n if self.reduction == "mean" else -1
        return (g * picked,)


def nll_loss(logp, target, reduction="mean"):
    target = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=np.int64)
    total = -np.add.reduce(logp.data[np.arange(len(target)), target])
    value = total / len(target) if reduction == "mean" else total
    # The target is not differentiable, so it gets no edge at all (unlike a scalar operand, which gets (None, 0)).
    return record(
        np.asarray(value, dtype=logp.dtype),
        NllLossBackward0,
        logp,
        self_shape=logp.shape,
        target=target,
        reduction=reduction,
    )


def _normalization_stats(x, dim, eps: float):
    """Mean and 1/sqrt(biased variance + eps) over `dim` (kept), as arrays or as tracer ops on `x`."""
    if not isinstance(x, Tensor):
        mean_ = x.mean(dim, keepdims=True)
        return mean_, 1 / np.sqrt(x.var(dim, keepdims=True) + eps)
    mean_ = mean(x, dim, keepdim=True)
    centered = x - mean_
    return mean_, (mean(centered * centered, dim, keepdim=True) + eps) ** -0.5


def _normalization_jvp(x, t, dim, mean_, invstd):
    """dy = dxhat·w + xhat·dw + db, where dxhat = invstd·(c - xhat·mean(xhat·c)) and c = dx - mean(dx)."""
    (data, weight, _), (dx, dw, db) = x, t
    xhat = (data - mean_) * invstd
    c = dx - dx.mean(dim, keepdims=True)
    return invstd * (c - xhat * (xhat * c).mean(dim, keepdims=True)) * weight + xhat * dw + db


class _NormBackward(Node):
    """Batch and layer norm: y = (x - mean) * invstd * weight + bias, statistics over `dim`.

    On the plain path the statistics saved by the forward are used; while recording a graph they are
    recomputed from the saved input as tracer ops, so the second derivative sees how they depend on x.
    """

    inputs = ("input", "weight", "bias")
    saves = ("input", "weight")
    dim: int
    eps: float
    saved_mean: np.ndarray
    saved_invstd: np.ndarray

    @staticmethod
    def jvp(out, x, t, dim, saved_mean, saved_invstd, **_):
        return _normalization_jvp(x, t, dim, saved_mean, saved_invstd)

    def backward(self, g):
        x, w = self.saved("input"), self.saved("weight")
        if isinstance(x, Tensor):
            mean_, invstd = _normalization_stats(x, self.dim, self.eps)
        else:
            mean_, invstd = self.saved_mean, self.saved_invstd
        xhat = (x - mean_) * invstd
        n = x.shape[self.dim]
        gw, gb = sum_dim(g * xhat, 0), sum_dim(g, 0)
        if self.dim == 0:  # batch norm: weight and statistics per feature
            gx = w * invstd / n * (n * g - gb - xhat * gw)
        else:  # layer norm: statistics per row, weight per feature
            gxhat = g * w
            gx = invstd / n * (n * gxhat - sum_dim(gxhat, -1, True) - xhat * sum_dim(gxhat * xhat, -1, True))
        return gx, gw, gb


class NativeBatchNormBackward0(_NormBackward):
    pass


class NativeLayerNormBackward0(_NormBackward):
    pass


def _normalize(x, weight, bias, eps: float, dim: int, node_cls):
    mean_, invstd = _normalization_stats(x.data, dim, eps)
    y = (x.data - mean_) * invstd * weight.data + bias.data
    out = record(y, node_cls, x, weight, bias, dim=dim, eps=eps, saved_mean=mean_, saved_invstd=invstd)
    return out, mean_


def batch_norm_train(x, weight, bias, eps):
    """Training-mode batch norm; also returns the batch mean and biased variance for the running statistics."""
    out, mean_ = _normalize(x, weight, bias, eps, 0, NativeBatchNormBackward0)
    return out, mean_[0], x.data.var(0)


def layer_norm(x, weight, bias, eps):
    return _normalize(x, weight, bias, eps, -1, NativeLayerNormBackward0)[0]


# --- in-place ops ---------------------------------------------------------------------


def rebase_history(a: Tensor, node: Node) -> None:
    """An in-place op's result: `a` now ends in `node`; a retained gradient follows it to the new node."""
    retains = a._retains_grad
    if retains and a.grad_fn is not None and a._output_nr in a.grad_fn._retain_grad:
        del a.grad_fn._retain_grad[a._output_nr]
    a.grad_fn, a._output_nr = node, 0
    if retains:
        node.retain_grad_of(a)


def _check_inplace(a: Tensor) -> None:
    if not is_grad_enabled():
        return
    if a.is_leaf and a.requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    base = a._base
    if base is not None and base.grad_fn is None and base._requires_grad:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")


def add_(a: Tensor, b, alpha=1.0) -> Tensor:
    """`a += alpha * b` in place. On a non-leaf the history is rebased: `a.grad_fn` becomes the new node."""
    _check_inplace(a)
    b = as_tensor(b, a)
    if is_grad_enabled() and (a.requires_grad or b.requires_grad):
        node = AddBackward0((a.gradient_edge(), b.gradient_edge()))
        node.self_shape, node.other_shape, node.alpha = a.shape, b.shape, alpha
        rebase_history(a, node)
    if _tangents[0] is not None and (a in _tangents[0] or b in _tangents[0]):  # forward mode: ta += alpha * tb
        _tangents[0][a] = _tangents[0].get(a, 0) + alpha * _tangents[0].get(b, np.zeros_like(b.data))
    a.data += alpha * b.data if alpha != 1 else b.data
    a._bump_version()
    return a


def sub_(a: Tensor, b) -> Tensor:
    """`a -= b` in place, as `add_` is `a += b`: the object everyone holds changes; its history is rebased."""
    _check_inplace(a)
    b = as_tensor(b, a)
    if is_grad_enabled() and (a.requires_grad or b.requires_grad):
        node = SubBackward0((a.gradient_edge(), b.gradient_edge()))
        node.self_shape, node.other_shape = a.shape, b.shape
        rebase_history(a, node)
    if _tangents[0] is not None and (a in _tangents[0] or b in _tangents[0]):  # forward mode: ta -= tb
        _tangents[0][a] = _tangents[0].get(a, 0) - _tangents[0].get(b, np.zeros_like(b.data))
    a.data -= b.data
    a._bump_version()
    return a


def mul_(a: Tensor, scalar: float) -> Tensor:
    """`a *= scalar` in place (a Python scalar, so nothing needs saving)."""
    _check_inplace(a)
    if is_grad_enabled() and a.requires_grad:
        node = MulBackward0((a.gradient_edge(), NO_EDGE))
        node.self_shape, node.other_shape = a.shape, ()
        node.save("other", Tensor(np.asarray(scalar, a.dtype)))
        rebase_history(a, node)
    if _tangents[0] is not None and a in _tangents[0]:
        _tangents[0][a] = _tangents[0][a] * scalar
    a.data *= scalar
    a._bump_version()
    return a


def zero_(a: Tensor) -> Tensor:
    _check_inplace(a)
    a.data[...] = 0
    a._bump_version()
    return a


# --- Tensor methods and operators: thin aliases of the ops above --------------------------


def _install_methods():
    def rtruediv(a, s):
        return mul(reciprocal(a), s)

    methods = {
        "__add__": add,
        "__radd__": lambda a, b: add(a, b),
        "__sub__": sub,
        "__rsub__": lambda a, b: rsub(a, b) if not isinstance(b, (Tensor, np.ndarray)) else sub(b, a),
        "__mul__": mul,
        "__rmul__": lambda a, b: mul(a, b),
        "__truediv__": div,
        "__rtruediv__": rtruediv,
        "__pow__": pow,
        "__rpow__": rpow,
        "__neg__": neg,
        "__matmul__": lambda a, b: mm(a, b),
        "__getitem__": getitem,
        "__iadd__": add_,
        "__isub__": sub_,
        "__imul__": mul_,
        "add": add,
        "sub": sub,
        "mul": mul,
        "div": div,
        "pow": pow,
        "neg": neg,
        "exp": exp,
        "log": log,
        "relu": relu,
        "tanh": tanh,
        "sigmoid": sigmoid,
        "abs": abs,
        "clamp": clamp,
        "sum": sum,
        "mean": mean,
        "max": max,
        "view": view,
        "reshape": view,
        "expand": expand,
        "t": t,
        "permute": permute,
        "mm": mm,
        "log_softmax": log_softmax,
        "clone": clone,
        "flatten": flatten,
        "add_": add_,
        "sub_": sub_,
        "mul_": mul_,
        "zero_": zero_,
        "T": property(lambda a: permute(a, tuple(reversed(range(a.ndim))))),
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


_install_methods()
